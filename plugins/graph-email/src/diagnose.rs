//! `mailhost doctor` for Microsoft Graph: every check that can run without prompting anyone
//! and without sending (unless a test email is asked for), each finding with its fix.
//!
//! Checks: the settings; the authority and tenant (OpenID configuration); the certificate
//! (readable, key matching, expiry: warn within 30 days, fail when expired); `SaveToSentItems`;
//! per staff member, a token by silent means only (cache, refresh token, password or app-only
//! grant; an interactive member who has not signed in is a finding), the app allowing the flow
//! the member uses, and the permissions granted (the token response's `scope`): `Mail.Send`,
//! `Mail.ReadWrite` (large attachments, finding sent mail again), `Mail.Send.Shared` (alternate
//! From). `send_test_to`: a test email, then found again in Sent Items.

use std::time::{Duration, Instant};

use mailhost_plugin_api::{
    DiagnoseRequest, Finding, FindingLevel, Mailbox, Message, ProviderError, StaffMember,
};
use reqwest::Method;

use crate::auth::certificate::{ClientCertificate, date};
use crate::auth::{Account, Mode};
use crate::http::{Request, Safety};
use crate::settings::{
    AUTHORITY, CLIENT_CERTIFICATE, SAVE_TO_SENT_ITEMS, Settings, Staff, TENANT_ID,
};
use crate::{Context, GraphProvider, graph};

/// A certificate closer than this to its expiry is a warning.
pub const CERTIFICATE_WARNING: Duration = Duration::from_secs(30 * 86_400);

fn ok(id: &str, message: &str) -> Finding {
    Finding::new(id, FindingLevel::OK, message, "")
}

fn warn(id: &str, message: &str, fix: &str) -> Finding {
    Finding::new(id, FindingLevel::WARN, message, fix)
}

fn fail(id: &str, message: &str, fix: &str) -> Finding {
    Finding::new(id, FindingLevel::FAIL, message, fix)
}

/// A failed step: the error's message is what happened and how to fix it.
fn fail_with(id: &str, what: &str, error: &ProviderError) -> Finding {
    fail(id, what, error.message.as_str())
}

/// Runs the checks.
///
/// # Errors
/// Never: every problem is a finding.
pub async fn run(
    provider: &GraphProvider,
    request: &DiagnoseRequest,
) -> Result<Vec<Finding>, ProviderError> {
    let mut findings = Vec::new();
    let settings = match Settings::parse(&request.settings) {
        Ok(settings) => settings,
        Err(error) => {
            findings.push(fail_with(
                "graph.settings",
                "the graph-email settings are incomplete or malformed",
                &error,
            ));
            return Ok(findings);
        }
    };
    if let Err(error) = settings.check_transport() {
        findings.push(fail_with(
            "graph.settings",
            "an endpoint setting is not safe to send credentials to",
            &error,
        ));
        return Ok(findings);
    }
    findings.push(ok(
        "graph.settings",
        &format!(
            "settings complete: app {} in tenant {}, {} sign-in, Authority {}, GraphEndpoint {}",
            settings.client_id,
            settings.tenant,
            if settings.client_certificate.is_some() {
                "app-only certificate"
            } else if settings.client_secret.is_some() {
                "app-only secret"
            } else {
                "delegated"
            },
            settings.authority_name(),
            settings.graph_resource()
        ),
    ));
    let reachable = authority(provider, &settings, &mut findings).await;
    certificate(&settings, &mut findings);
    if settings.save_to_sent_items {
        findings.push(ok(
            "graph.save-to-sent-items",
            "SaveToSentItems is true: emails whose outcome is in doubt can be found again in Sent Items",
        ));
    } else {
        findings.push(warn(
            "graph.save-to-sent-items",
            "SaveToSentItems is false: no Sent Items copy is kept, so an email whose outcome is in doubt (a 5xx, a timeout, a crash) cannot be proven sent or not and stays 'unknown' (exactly-once is given up)",
            &format!("mailhost config set graph-email {SAVE_TO_SENT_ITEMS} true"),
        ));
    }
    if !reachable {
        return Ok(findings);
    }
    for member in request.staff.iter() {
        staff_checks(provider, &settings, member, &mut findings).await;
    }
    if let Some(to) = request.send_test_to.as_ref().into_option() {
        match request.staff.first() {
            Some(member) => send_test(provider, &settings, member, to, &mut findings).await,
            None => findings.push(fail(
                "graph.send-test",
                "no staff member uses graph-email, so there is nobody to send the test email as",
                "mailhost staff add ID --provider graph-email --email ADDR, then run doctor again",
            )),
        }
    }
    Ok(findings)
}

async fn authority(
    provider: &GraphProvider,
    settings: &Settings,
    findings: &mut Vec<Finding>,
) -> bool {
    let staff = Staff::from_api(&StaffMember {
        id: "".into(),
        email: "".into(),
        display_name: "".into(),
        username: "".into(),
        password: mailhost_plugin_api::abi_stable::std_types::ROption::RNone,
        fields: Default::default(),
    });
    let ctx = Context {
        http: &provider.http,
        settings,
        staff: &staff,
    };
    let url = settings.authority_url(&format!(
        "{}/v2.0/.well-known/openid-configuration",
        settings.tenant
    ));
    let client = match ctx.http.client(settings.connect_timeout) {
        Ok(client) => client,
        Err(error) => {
            findings.push(fail(
                "graph.authority",
                &format!("the HTTP client could not be set up: {error}"),
                "check SSL_CERT_FILE and the proxy variables (HTTPS_PROXY, NO_PROXY)",
            ));
            return false;
        }
    };
    let request = Request::new(Method::GET, url.clone(), Safety::Idempotent);
    match ctx.http.execute(&client, &request, &ctx.policy()).await {
        Ok(response) if response.status.is_success() => {
            let issuer = response
                .json()
                .and_then(|j| j["issuer"].as_str().map(str::to_string))
                .unwrap_or_default();
            findings.push(ok(
                "graph.authority",
                &format!(
                    "tenant {} found at {} (issuer {issuer})",
                    settings.tenant,
                    settings.authority_name()
                ),
            ));
            true
        }
        Ok(response) => {
            let body = String::from_utf8_lossy(&response.body);
            findings.push(fail(
                "graph.authority",
                &format!(
                    "the Microsoft identity platform at {} does not know tenant '{}' (HTTP {}{})",
                    settings.authority_name(),
                    settings.tenant,
                    response.status.as_u16(),
                    if body.contains("90002") { ", AADSTS90002" } else { "" }
                ),
                &format!(
                    "set {TENANT_ID} to the directory (tenant) ID GUID or a verified domain from Microsoft Entra admin center > Overview (mailhost config set graph-email {TENANT_ID} ...), and {AUTHORITY} to the tenant's cloud"
                ),
            ));
            false
        }
        Err(error) => {
            findings.push(fail(
                "graph.authority",
                &format!("{} cannot be reached: {error}", settings.authority_name()),
                &format!(
                    "check the network, any proxy (HTTPS_PROXY, NO_PROXY) and the {AUTHORITY} setting"
                ),
            ));
            false
        }
    }
}

fn certificate(settings: &Settings, findings: &mut Vec<Finding>) {
    let Some(path) = &settings.client_certificate else {
        return;
    };
    let certificate =
        match ClientCertificate::load(path, settings.client_certificate_password.as_ref()) {
            Ok(certificate) => certificate,
            Err(error) => {
                let error = error.to_provider_error();
                findings.push(fail_with(
                    "graph.certificate",
                    &format!("the {CLIENT_CERTIFICATE} file cannot be used"),
                    &error,
                ));
                return;
            }
        };
    let now = i64::try_from(crate::auth::cache::now_secs()).unwrap_or(i64::MAX);
    let left = certificate.not_after - now;
    let renew = format!(
        "create a new certificate, upload its public part under App registrations > {} > Certificates & secrets > Certificates, and set {CLIENT_CERTIFICATE} to it (mailhost config set graph-email {CLIENT_CERTIFICATE} /path/to/new.pem)",
        settings.client_id
    );
    let warning = i64::try_from(CERTIFICATE_WARNING.as_secs()).unwrap_or(i64::MAX);
    if left <= 0 {
        findings.push(fail(
            "graph.certificate",
            &format!(
                "the {} has expired: app-only sign-in fails",
                certificate.describe()
            ),
            &renew,
        ));
    } else if left < warning {
        findings.push(warn(
            "graph.certificate",
            &format!(
                "the {} expires in {} days",
                certificate.describe(),
                left / 86_400
            ),
            &renew,
        ));
    } else {
        findings.push(ok(
            "graph.certificate",
            &format!(
                "the {} matches its key and is valid until {}",
                certificate.describe(),
                date(certificate.not_after)
            ),
        ));
    }
}

/// Whether the granted `scope` names `permission` (bare or as a Graph URI).
fn granted(scope: &str, permission: &str) -> bool {
    scope.split_whitespace().any(|s| {
        s.rsplit('/')
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case(permission))
    })
}

async fn staff_checks(
    provider: &GraphProvider,
    settings: &Settings,
    member: &StaffMember,
    findings: &mut Vec<Finding>,
) {
    let staff = Staff::from_api(member);
    let id = staff.id.clone();
    let ctx = Context {
        http: &provider.http,
        settings,
        staff: &staff,
    };
    let account = Account::of(&ctx);
    let how = match account.mode {
        Mode::AppOnly => "app-only",
        Mode::Password => "username and password (NonInteractive)",
        Mode::Interactive => "its saved sign-in (device code or browser)",
    };
    let entry = match provider.auth.token_entry(&ctx, &account).await {
        Ok(entry) => entry,
        Err(error) => {
            let what = if error.code.as_str() == "NotSignedIn" {
                format!(
                    "staff {id} has not signed in to Microsoft, so mail cannot be sent for them"
                )
            } else {
                format!("staff {id} cannot get a Microsoft token with {how}")
            };
            findings.push(fail_with("graph.sign-in", &what, &error).for_staff(&id));
            if account.mode == Mode::Interactive {
                public_client(provider, &ctx, &account, findings).await;
            }
            return;
        }
    };
    findings.push(
        ok(
            "graph.sign-in",
            &format!(
                "staff {id} gets a token silently with {how}{}",
                entry
                    .account
                    .as_deref()
                    .map(|a| format!(" as {a}"))
                    .unwrap_or_default()
            ),
        )
        .for_staff(&id),
    );
    if account.mode == Mode::AppOnly {
        app_permissions(provider, &ctx, &account, findings).await;
        return;
    }
    let scope = entry.scope.unwrap_or_default();
    let consent = format!(
        "an admin adds the delegated Microsoft Graph permission under App registrations > {} > API permissions and clicks 'Grant admin consent', then `mailhost login {id}` again",
        settings.client_id
    );
    if granted(&scope, "Mail.Send") {
        findings.push(
            ok(
                "graph.permission.send",
                &format!("staff {id} may send mail (Mail.Send)"),
            )
            .for_staff(&id),
        );
    } else {
        findings.push(
            fail(
                "graph.permission.send",
                &format!("the token of staff {id} lacks Mail.Send (granted: {scope})"),
                &format!("Mail.Send: {consent}"),
            )
            .for_staff(&id),
        );
    }
    if granted(&scope, "Mail.ReadWrite") {
        findings.push(ok(
            "graph.permission.readwrite",
            &format!("staff {id} may send attachments over 3 MB and mailhost can find sent mail again (Mail.ReadWrite)"),
        ).for_staff(&id));
    } else {
        findings.push(
            warn(
                "graph.permission.readwrite",
                &format!("the token of staff {id} lacks Mail.ReadWrite: attachments over 3 MB fail, and emails whose outcome is in doubt cannot be looked up in Sent Items"),
                &format!("Mail.ReadWrite: {consent}"),
            )
            .for_staff(&id),
        );
    }
    if granted(&scope, "Mail.Send.Shared") {
        findings.push(ok(
            "graph.permission.shared",
            &format!("staff {id} may send from other mailboxes they have rights on (Mail.Send.Shared)"),
        ).for_staff(&id));
    } else {
        findings.push(
            warn(
                "graph.permission.shared",
                &format!("the token of staff {id} lacks Mail.Send.Shared: emails with another From address (a shared mailbox) fail"),
                &format!("only if staff {id} sends as another mailbox: Mail.Send.Shared: {consent}"),
            )
            .for_staff(&id),
        );
    }
}

/// For an interactive member who cannot sign in silently: does the app allow the device-code
/// flow? Asking for a code prompts nobody (the code is never shown).
async fn public_client(
    provider: &GraphProvider,
    ctx: &Context<'_>,
    account: &Account,
    findings: &mut Vec<Finding>,
) {
    let id = &ctx.staff.id;
    let form = vec![
        (
            "client_id",
            crate::security::Secret::new(ctx.settings.client_id.clone()),
        ),
        (
            "scope",
            crate::security::Secret::new(account.scopes.clone()),
        ),
    ];
    let _ = provider;
    match crate::auth::endpoint::post(ctx, "devicecode", form).await {
        Ok(response) if response.status.is_success() => findings.push(
            ok(
                "graph.app-flows",
                &format!(
                    "the app {} allows device-code sign-in for staff {id}",
                    ctx.settings.client_id
                ),
            )
            .for_staff(id),
        ),
        Ok(response) => {
            let error = crate::auth::errors::explain(
                ctx,
                crate::auth::errors::Flow::DeviceCode,
                crate::auth::endpoint::oauth_error(&response),
            );
            findings.push(
                fail_with(
                    "graph.app-flows",
                    &format!(
                        "the app {} refuses device-code sign-in",
                        ctx.settings.client_id
                    ),
                    &error,
                )
                .for_staff(id),
            );
        }
        Err(_) => {}
    }
}

/// App-only: the granted roles are not in the token response, and the token is not parsed; a
/// read of the mailbox's Sent Items shows whether Mail.Read/Mail.ReadWrite was granted.
async fn app_permissions(
    provider: &GraphProvider,
    ctx: &Context<'_>,
    account: &Account,
    findings: &mut Vec<Finding>,
) {
    let id = &ctx.staff.id;
    let graph = graph::Graph {
        ctx,
        auth: &provider.auth,
        account: account.clone(),
        limit: provider.limits.of(
            &ctx.settings.client_id,
            &ctx.staff.email,
            ctx.settings.concurrent_requests,
        ),
    };
    let route = graph::send::route(&graph, &Message::default());
    match graph::sent_items::find(&graph, &route, "mailhost-doctor-probe", "").await {
        Ok(_) => findings.push(
            ok(
                "graph.permission.readwrite",
                &format!("the app may read the Sent Items of {} (Mail.Read/Mail.ReadWrite): sent mail can be found again", route.from.address),
            )
            .for_staff(id),
        ),
        Err(error) => findings.push(
            warn(
                "graph.permission.readwrite",
                &format!("the app cannot read the Sent Items of {}: emails whose outcome is in doubt cannot be looked up, and attachments over 3 MB need Mail.ReadWrite", route.from.address),
                error.message.as_str(),
            )
            .for_staff(id),
        ),
    }
}

async fn send_test(
    provider: &GraphProvider,
    settings: &Settings,
    member: &StaffMember,
    to: &str,
    findings: &mut Vec<Finding>,
) {
    let staff = Staff::from_api(member);
    let id = staff.id.clone();
    let ctx = Context {
        http: &provider.http,
        settings,
        staff: &staff,
    };
    let email_id = format!("doctor-{}", uuid::Uuid::new_v4());
    let message = Message {
        id: email_id.as_str().into(),
        to: vec![Mailbox::new(to, "")].into(),
        subject: "mailhost doctor test email".into(),
        body: format!(
            "This test email was sent by `mailhost doctor --send-test` for staff {id} through Microsoft Graph."
        )
        .as_str()
        .into(),
        ..Message::default()
    };
    let (graph, route) = provider.graph_for(&ctx, &message);
    if let Err(error) = graph::send::send(&graph, &message).await {
        findings.push(
            fail_with(
                "graph.send-test",
                &format!("the test email to {to} was not sent"),
                &error,
            )
            .for_staff(&id),
        );
        return;
    }
    if !settings.save_to_sent_items {
        findings.push(
            ok(
                "graph.send-test",
                &format!("the test email to {to} was accepted (SaveToSentItems is false, so it is not looked for in Sent Items)"),
            )
            .for_staff(&id),
        );
        return;
    }
    let started = Instant::now();
    let bound = settings.reconcile_wait.min(Duration::from_secs(60));
    loop {
        match graph::sent_items::find(&graph, &route, &email_id, "").await {
            Ok(Some(found)) => {
                findings.push(
                    ok(
                        "graph.send-test",
                        &format!(
                            "the test email to {to} was sent and found in the Sent Items of {} after {:.1} s (Message-ID {})",
                            route.from.address,
                            started.elapsed().as_secs_f64(),
                            found.internet_message_id
                        ),
                    )
                    .for_staff(&id),
                );
                return;
            }
            Ok(None) if started.elapsed() < bound => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(None) => {
                findings.push(
                    warn(
                        "graph.send-test",
                        &format!("the test email to {to} was accepted but not found in the Sent Items of {} within {} s", route.from.address, bound.as_secs()),
                        "check the recipient's mailbox; if Sent Items is slow, raise ReconcileWaitSeconds",
                    )
                    .for_staff(&id),
                );
                return;
            }
            Err(error) => {
                findings.push(
                    warn(
                        "graph.send-test",
                        &format!(
                            "the test email to {to} was accepted, but Sent Items cannot be searched"
                        ),
                        error.message.as_str(),
                    )
                    .for_staff(&id),
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_bare_and_uri_forms() {
        let scope = "https://graph.microsoft.com/Mail.Send Mail.ReadWrite openid";
        assert!(granted(scope, "Mail.Send"));
        assert!(granted(scope, "mail.readwrite"));
        assert!(!granted(scope, "Mail.Send.Shared"));
        assert!(!granted("", "Mail.Send"));
    }
}
