//! `mailhost email send`: validate, resolve the route, send, report.


use super::{OK, print, print_json};
use crate::cli::{EmailCommand, SendArgs};
use crate::compose::{self, Draft};
use crate::dispatch::Dispatcher;
use crate::error::Error;
use crate::home::Home;
use crate::report::{failed_json, sent_json};

pub(super) fn run(home: &Home, command: EmailCommand) -> Result<u8, Error> {
    match command {
        EmailCommand::Send(args) => send(home, args),
    }
}

/// The draft the flags describe.
pub(crate) fn draft_of(args: &SendArgs) -> Draft {
    Draft {
        to: args.to.clone(),
        cc: args.cc.clone(),
        bcc: args.bcc.clone(),
        reply_to: args.reply_to.clone(),
        from: args.from.clone(),
        subject: args.subject.clone(),
        body: args.body.clone(),
        body_file: args.body_file.clone(),
        html: args.html,
        attach: args.attach.clone(),
        headers: args.header.clone(),
    }
}

fn send(home: &Home, args: SendArgs) -> Result<u8, Error> {
    let draft = draft_of(&args);
    let dispatcher = Dispatcher::new(home)?;
    let route = dispatcher.prepare(&args.staff)?;
    let id = compose::new_email_id();
    let message = route.compose(&draft, &id)?;
    let result = route.send(&message);
    let provider = route.provider_name();
    match result {
        Ok(receipt) => {
            if args.json {
                print_json(&sent_json(&id, provider, &receipt))?;
            } else {
                let detail = [receipt.detail.as_str(), receipt.message_id.as_str()]
                    .into_iter()
                    .find(|s| !s.is_empty())
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                print(&format!("sent {id} through {provider}{detail}"))?;
            }
            OK
        }
        Err(error) => {
            if args.json {
                print_json(&failed_json(&id, provider, &error))?;
            }
            // The one-line reason goes to stderr in both modes (exit 1).
            Err(Error::Failed(format!(
                "email {id} was not sent: {provider} failed ({}): {error}",
                error.kind
            )))
        }
    }
}
