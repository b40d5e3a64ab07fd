//! `mailhost login|logout STAFF_ID`: the provider's interactive sign-in and sign-out. Device-code
//! instructions reach the terminal through the plugin's `notify` as they arrive. `--browser
//! [--no-open]` asks for the browser sign-in: the host adds the sign-in settings `SignInMode =
//! browser` and `SignInNoOpen` to the request (providers without it keep their own flow).

use mailhost_plugin_api::{ErrorKind, ProviderError};

use super::{OK, print};
use crate::config::home::Home;
use crate::delivery::dispatch::Dispatcher;
use crate::error::Error;

pub(super) fn login(
    home: &Home,
    staff_id: &str,
    browser: bool,
    no_open: bool,
) -> Result<u8, Error> {
    let dispatcher = Dispatcher::new(home)?;
    let route = dispatcher.prepare(staff_id)?;
    let line = if browser {
        route.sign_in_browser(no_open)
    } else {
        route.sign_in()
    }
    .map_err(|e| failure("sign-in", staff_id, route.provider_name(), e))?;
    super::audit::note(
        home,
        "login",
        serde_json::json!({"staff": staff_id, "provider": route.provider_name(), "token_cache": crate::config::audit::CHANGED}),
    );
    print(&line)?;
    OK
}

pub(super) fn logout(home: &Home, staff_id: &str) -> Result<u8, Error> {
    let dispatcher = Dispatcher::new(home)?;
    let route = dispatcher.prepare(staff_id)?;
    let line = route
        .sign_out()
        .map_err(|e| failure("sign-out", staff_id, route.provider_name(), e))?;
    super::audit::note(
        home,
        "logout",
        serde_json::json!({"staff": staff_id, "provider": route.provider_name(), "token_cache": "removed"}),
    );
    print(&line)?;
    OK
}

fn failure(what: &str, staff_id: &str, provider: &str, error: ProviderError) -> Error {
    if error.kind == ErrorKind::UNSUPPORTED {
        Error::Usage(format!(
            "provider '{provider}' has no interactive sign-in; store a username and password instead: `mailhost staff set {staff_id} --username USER --password-stdin`"
        ))
    } else {
        Error::Failed(format!(
            "{what} for staff member '{staff_id}' failed ({}): {error}",
            error.kind
        ))
    }
}
