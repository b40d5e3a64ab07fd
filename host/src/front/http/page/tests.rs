//! The page's routes against the fake engine: sign-in and its cookie, the security headers,
//! escaping of hostile subjects, search, and the refusals of cross-site and CSRF-less forms.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

use super::super::fake::{FakeEngine, STAFF};
use super::super::{Backend, HttpState, routes, tokens};
use super::session;

struct Page {
    state: HttpState,
    engine: Arc<FakeEngine>,
    token: String,
}

impl Page {
    fn new() -> Self {
        let engine = Arc::new(FakeEngine::new());
        let (token, _) = tokens::create(Backend::outbox(engine.as_ref()), "desk").unwrap();
        Self {
            state: HttpState::new(engine.clone(), 1024 * 1024),
            engine,
            token,
        }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = routes::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn get(&self, uri: &str) -> Request<Body> {
        Request::builder()
            .uri(uri)
            .header(
                header::COOKIE,
                format!("{}={}", session::COOKIE, self.token),
            )
            .body(Body::empty())
            .unwrap()
    }

    fn post_form(&self, uri: &str, form: &str, origin: Option<&str>) -> Request<Body> {
        let mut builder = Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::HOST, "127.0.0.1:8025")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(
                header::COOKIE,
                format!("{}={}", session::COOKIE, self.token),
            );
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        builder.body(Body::from(form.to_string())).unwrap()
    }

    fn submit(&self, subject: &str) -> String {
        let draft = crate::delivery::compose::Draft {
            to: vec!["megan@contoso.com".into()],
            subject: subject.into(),
            body: Some("hello".into()),
            ..Default::default()
        };
        self.engine
            .submit(super::super::ApiSubmission {
                staff_id: STAFF.into(),
                draft,
                ..Default::default()
            })
            .unwrap()
            .id
    }
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_a_wrong_token_is_refused() {
    let page = Page::new();
    let (status, headers, body) = page
        .call(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("<label for=\"token\">API token</label>"),
        "{body}"
    );
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let bad = Request::builder()
        .method("POST")
        .uri("/signin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("token=mh_wrong"))
        .unwrap();
    let (status, headers, body) = page.call(bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(body.contains("not valid"));
    let good = Request::builder()
        .method("POST")
        .uri("/signin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={}", page.token)))
        .unwrap();
    let (status, headers, _) = page.call(good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("mailhost_session=mh_"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
}

#[tokio::test]
async fn hostile_subjects_are_escaped_in_the_list_and_the_email_page() {
    let page = Page::new();
    let script = page.submit("<script>alert(1)</script>");
    let img = page.submit("\"><img src=x onerror=alert(1)>");
    page.submit("Invoice 1001");
    let (status, _, body) = page.call(page.get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    assert!(body.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!body.contains("<script>alert"));
    assert!(!body.contains("<img"));
    // The only script is the page's own file.
    assert_eq!(body.matches("<script").count(), 1);
    assert!(body.contains("<script src=\"/assets/page.js\" defer></script>"));
    for id in [&script, &img] {
        let (status, _, body) = page.call(page.get(&format!("/emails/{id}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body.contains("<img") && body.matches("<script").count() == 1);
    }
    let (_, _, found) = page.call(page.get("/?q=invoice")).await;
    assert!(found.contains("Invoice 1001") && !found.contains("alert(1)"));
    let (_, _, queued) = page.call(page.get("/?status=queued&q=%3Cscript%3E")).await;
    assert!(queued.contains(&script) && !queued.contains(&img));
    let (_, _, odd) = page.call(page.get("/?status=bogus")).await;
    assert!(odd.contains("role=\"alert\""), "{odd}");
}

#[tokio::test]
async fn retry_needs_the_csrf_token_and_this_site_as_origin() {
    let page = Page::new();
    let id = page.submit("Invoice 1001");
    let csrf = session::csrf_token(&page.token);
    let uri = format!("/emails/{id}/retry");
    let (status, _, _) = page
        .call(page.post_form(&uri, &format!("csrf={csrf}"), Some("http://evil.example")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = page.call(page.post_form(&uri, "csrf=nope", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = page
        .call(page.post_form(&uri, &format!("csrf={csrf}"), Some("http://127.0.0.1:8025")))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        format!("/emails/{id}?done=retried").as_str()
    );
    let signed_out = Request::builder()
        .uri(format!("/emails/{id}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = page.call(signed_out).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("Sign in"));
}
