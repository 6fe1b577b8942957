//! A real SMTP server for the tests, in process: the `mailin` protocol engine driven over tokio
//! sockets on 127.0.0.1.
//!
//! It speaks SMTP over plain TCP, offers AUTH PLAIN and LOGIN and accepts any credentials (recording
//! them), captures every message and parses it with `mail-parser`, so tests can read subjects,
//! bodies, codes and links. Dropping the server closes its listener and every open session.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_parser::{MessageParser, PartType};
use mailin::{response, Action, AuthMechanism, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::wait_until;

/// The name the server greets with.
const SERVER_NAME: &str = "mail.stratus.test";

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct CapturedEmail {
    /// The first envelope recipient (`RCPT TO`).
    pub to: String,
    /// Every envelope recipient.
    pub recipients: Vec<String>,
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The `From` header.
    pub from_header: Option<String>,
    pub subject: String,
    /// The `text/plain` part, if there is one.
    pub text: Option<String>,
    /// The `text/html` part, if there is one.
    pub html: Option<String>,
    pub message_id: Option<String>,
    /// The credentials the client authenticated with (user, password), if it did.
    pub auth: Option<(String, String)>,
    /// The message as transmitted (RFC 5322, CRLF line ends, dot-stuffing removed).
    pub raw: String,
}

impl CapturedEmail {
    /// The first `http://` or `https://` link in the text body.
    pub fn link(&self) -> Option<String> {
        first_link(self.text.as_deref()?)
    }

    /// The first run of exactly `digits` ASCII digits in the text body (a one-time code).
    pub fn code(&self, digits: usize) -> Option<String> {
        first_code(self.text.as_deref()?, digits)
    }
}

/// The first `http(s)://…` run of non-space characters in `text`.
pub fn first_link(text: &str) -> Option<String> {
    let start = text.find("https://").or_else(|| text.find("http://"))?;
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    Some(link)
}

/// The first run of exactly `digits` ASCII digits in `text`.
pub fn first_code(text: &str, digits: usize) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == digits)
        .map(str::to_owned)
}

struct Inbox {
    emails: Mutex<Vec<CapturedEmail>>,
    arrived: watch::Sender<usize>,
}

impl Inbox {
    fn snapshot(&self) -> Vec<CapturedEmail> {
        self.emails.lock().expect("inbox lock").clone()
    }
}

/// A running SMTP server on 127.0.0.1.
pub struct MailServer {
    port: u16,
    inbox: Arc<Inbox>,
    accept: JoinHandle<()>,
}

impl Drop for MailServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl MailServer {
    /// Starts a server on a random free port.
    pub async fn start() -> MailServer {
        Self::start_on(0).await
    }

    /// Starts a server on `port` (0: any free port); a test that stops a server can bring one
    /// back on the same port.
    pub async fn start_on(port: u16) -> MailServer {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("the test SMTP server cannot listen on {port}: {e}"));
        let port = listener.local_addr().expect("local address").port();
        let (arrived, _) = watch::channel(0);
        let inbox = Arc::new(Inbox {
            emails: Mutex::new(Vec::new()),
            arrived,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&inbox)));
        MailServer {
            port,
            inbox,
            accept,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message received so far, in arrival order.
    pub fn all(&self) -> Vec<CapturedEmail> {
        self.inbox.snapshot()
    }

    /// Every message received so far for `to` (case-insensitive).
    pub fn emails_to(&self, to: &str) -> Vec<CapturedEmail> {
        self.all().into_iter().filter(|e| is_for(e, to)).collect()
    }

    /// Waits for the first message to `to`; panics after `timeout`.
    pub async fn wait_for_email(&self, to: &str, timeout: Duration) -> CapturedEmail {
        self.wait_for_email_with_subject(to, "", timeout).await
    }

    /// Waits for the first message to `to` whose subject contains `subject_part`; panics after
    /// `timeout`, listing what did arrive.
    pub async fn wait_for_email_with_subject(
        &self,
        to: &str,
        subject_part: &str,
        timeout: Duration,
    ) -> CapturedEmail {
        let found = wait_until(self.inbox.arrived.subscribe(), timeout, || {
            self.all()
                .into_iter()
                .find(|e| is_for(e, to) && e.subject.contains(subject_part))
        })
        .await;
        found.unwrap_or_else(|| {
            let seen: Vec<(String, String)> = self
                .all()
                .into_iter()
                .map(|e| (e.to, e.subject))
                .collect();
            panic!("no email to {to} with {subject_part:?} in its subject within {timeout:?}; received: {seen:?}")
        })
    }

    /// Waits until `count` messages in all have arrived; panics after `timeout`.
    pub async fn wait_for_count(&self, count: usize, timeout: Duration) -> Vec<CapturedEmail> {
        let found = wait_until(self.inbox.arrived.subscribe(), timeout, || {
            let all = self.all();
            (all.len() >= count).then_some(all)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "{} of {count} emails arrived within {timeout:?}",
                self.all().len()
            )
        })
    }
}

fn is_for(email: &CapturedEmail, to: &str) -> bool {
    email.recipients.iter().any(|r| r.eq_ignore_ascii_case(to))
}

async fn accept_loop(listener: TcpListener, inbox: Arc<Inbox>) {
    // Owned here, so aborting this task aborts every session with it.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                sessions.spawn(session(stream, peer.ip(), Arc::clone(&inbox)));
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

async fn session(stream: TcpStream, peer: IpAddr, inbox: Arc<Inbox>) {
    let mut builder = SessionBuilder::new(SERVER_NAME);
    // A test peer on loopback: credentials over plain TCP are what the tests exercise.
    builder
        .enable_auth(AuthMechanism::Plain)
        .enable_auth(AuthMechanism::Login)
        .insecure_enable_plaintext_auth();
    let mut smtp = builder.build(
        peer,
        Capture {
            inbox,
            auth: None,
            from: String::new(),
            recipients: Vec::new(),
            data: Vec::new(),
        },
    );
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if reply(&mut write, &smtp.greeting()).await.is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let answer = smtp.process(&line);
        match answer.action {
            Action::NoReply => {}
            Action::Reply => {
                if reply(&mut write, &answer).await.is_err() {
                    return;
                }
            }
            // No TLS on this test server: STARTTLS is never offered, so an upgrade ends the session.
            Action::Close | Action::UpgradeTls => {
                let _ = reply(&mut write, &answer).await;
                return;
            }
        }
    }
}

async fn reply(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    answer: &Response,
) -> std::io::Result<()> {
    write.write_all(&answer.buffer()?).await?;
    write.flush().await
}

/// The `mailin` handler of one session: records the envelope and the data.
struct Capture {
    inbox: Arc<Inbox>,
    auth: Option<(String, String)>,
    from: String,
    recipients: Vec<String>,
    data: Vec<u8>,
}

fn bare_address(path: &str) -> String {
    path.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

impl Handler for Capture {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = bare_address(from);
        self.recipients.clear();
        self.data.clear();
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        self.recipients.push(bare_address(to));
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let raw = std::mem::take(&mut self.data);
        let email = parse(&raw, self);
        let mut emails = self.inbox.emails.lock().expect("inbox lock");
        emails.push(email);
        let count = emails.len();
        drop(emails);
        self.inbox.arrived.send_replace(count);
        response::OK
    }

    fn auth_plain(
        &mut self,
        _authorization_id: &str,
        authentication_id: &str,
        password: &str,
    ) -> Response {
        self.auth = Some((authentication_id.to_owned(), password.to_owned()));
        response::AUTH_OK
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        self.auth = Some((username.to_owned(), password.to_owned()));
        response::AUTH_OK
    }
}

fn parse(raw: &[u8], envelope: &Capture) -> CapturedEmail {
    let parsed = MessageParser::default().parse(raw);
    let mut text = None;
    let mut html = None;
    if let Some(message) = &parsed {
        for part in &message.parts {
            match &part.body {
                PartType::Text(body) if text.is_none() => text = Some(body.to_string()),
                PartType::Html(body) if html.is_none() => html = Some(body.to_string()),
                _ => {}
            }
        }
    }
    CapturedEmail {
        to: envelope.recipients.first().cloned().unwrap_or_default(),
        recipients: envelope.recipients.clone(),
        from: envelope.from.clone(),
        from_header: parsed.as_ref().and_then(|m| {
            m.from()
                .and_then(|a| a.first())
                .map(|a| match (&a.name, &a.address) {
                    (Some(name), Some(address)) => format!("{name} <{address}>"),
                    (None, Some(address)) => address.to_string(),
                    _ => String::new(),
                })
        }),
        subject: parsed
            .as_ref()
            .and_then(|m| m.subject())
            .unwrap_or_default()
            .to_owned(),
        text,
        html,
        message_id: parsed
            .as_ref()
            .and_then(|m| m.message_id())
            .map(str::to_owned),
        auth: envelope.auth.clone(),
        raw: String::from_utf8_lossy(raw).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_and_a_code_are_found_in_a_text_body() {
        let text =
            "Hello,\n\nOpen:\nhttps://stratus.test/verify?token=abc&x=1\n\nCode: 12 482913 99\n";
        assert_eq!(
            first_link(text).as_deref(),
            Some("https://stratus.test/verify?token=abc&x=1")
        );
        assert_eq!(first_code(text, 6).as_deref(), Some("482913"));
        assert_eq!(first_code(text, 7), None);
    }
}
