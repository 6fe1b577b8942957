//! The messages the identity flows send, rendered as plain Rust: no template engine, no files.
//!
//! Each email has a plain-text body and an HTML alternative built from the same parts. Every
//! interpolated value is escaped in the HTML body ([`escape_html`]); subjects are fixed sentences, so
//! nothing a user typed ever reaches a mail header. SMS texts fit one GSM segment.

use chrono::{DateTime, Utc};

/// The product name every message signs with.
pub const PRODUCT: &str = "Stratus";
/// Characters of one GSM-7 SMS segment: a longer text is split and billed as several messages.
pub const SMS_SEGMENT_CHARS: usize = 160;

/// An email ready to store: subject, plain-text body and HTML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Escapes the five characters that change meaning in HTML text and quoted attribute values.
pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A piece of an email body, written raw and escaped once when the HTML is built.
enum Part<'a> {
    Paragraph(String),
    Link { label: &'a str, url: &'a str },
    Code(&'a str),
}

fn render(subject: &str, name: Option<&str>, parts: &[Part<'_>]) -> Rendered {
    let greeting = match name {
        Some(name) => format!("Hello {name},"),
        None => "Hello,".to_owned(),
    };
    let signature = format!("— The {PRODUCT} team");

    let mut text = vec![greeting.clone()];
    let mut html = vec![format!("<p>{}</p>", escape_html(&greeting))];
    for part in parts {
        match part {
            Part::Paragraph(sentence) => {
                text.push(sentence.clone());
                html.push(format!("<p>{}</p>", escape_html(sentence)));
            }
            Part::Link { label, url } => {
                text.push(format!("{label}:\n{url}"));
                html.push(format!(
                    "<p><a href=\"{}\">{}</a></p>\n<p style=\"font-size:12px;color:#555\">{}</p>",
                    escape_html(url),
                    escape_html(label),
                    escape_html(url)
                ));
            }
            Part::Code(code) => {
                text.push(format!("    {code}"));
                html.push(format!(
                    "<p style=\"font-size:24px;font-weight:bold;letter-spacing:4px\">{}</p>",
                    escape_html(code)
                ));
            }
        }
    }
    text.push(signature.clone());
    html.push(format!("<p>{}</p>", escape_html(&signature)));

    let mut text = text.join("\n\n");
    text.push('\n');
    let html = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.5\">\n{}\n</body>\n</html>\n",
        escape_html(subject),
        html.join("\n")
    );
    Rendered {
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// Asks a new account holder to confirm their email address.
#[derive(Debug, Clone)]
pub struct VerifyEmail<'a> {
    pub name: &'a str,
    pub link: &'a str,
}

impl VerifyEmail<'_> {
    pub fn email(&self) -> Rendered {
        render(
            &format!("Confirm your email address for {PRODUCT}"),
            Some(self.name),
            &[
                Part::Paragraph(
                    "Please confirm that this is your email address by opening the link below."
                        .to_owned(),
                ),
                Part::Link {
                    label: "Confirm my email address",
                    url: self.link,
                },
                Part::Paragraph(format!(
                    "If you did not create a {PRODUCT} account, you can ignore this message."
                )),
            ],
        )
    }
}

/// A one-time code that finishes a login (second factor by email or SMS).
#[derive(Debug, Clone)]
pub struct LoginCode<'a> {
    pub name: &'a str,
    pub code: &'a str,
    pub minutes_valid: u32,
}

impl LoginCode<'_> {
    pub fn email(&self) -> Rendered {
        render(
            &format!("Your {PRODUCT} login code"),
            Some(self.name),
            &[
                Part::Paragraph(format!("Use this code to finish logging in to {PRODUCT}:")),
                Part::Code(self.code),
                Part::Paragraph(format!(
                    "It is valid for {} minutes. If you did not try to log in, someone knows your \
                     password: change it now.",
                    self.minutes_valid
                )),
            ],
        )
    }

    pub fn sms(&self) -> String {
        format!(
            "Your {PRODUCT} login code is {}. It is valid for {} minutes. Never share it.",
            self.code, self.minutes_valid
        )
    }
}

/// A code that proves the account holder has the phone they entered.
#[derive(Debug, Clone)]
pub struct PhoneCode<'a> {
    pub code: &'a str,
    pub minutes_valid: u32,
}

impl PhoneCode<'_> {
    pub fn sms(&self) -> String {
        format!(
            "Your {PRODUCT} verification code is {}. It is valid for {} minutes.",
            self.code, self.minutes_valid
        )
    }
}

/// A link to choose a new password.
#[derive(Debug, Clone)]
pub struct PasswordReset<'a> {
    pub name: &'a str,
    pub link: &'a str,
    pub minutes_valid: u32,
}

impl PasswordReset<'_> {
    pub fn email(&self) -> Rendered {
        render(
            &format!("Reset your {PRODUCT} password"),
            Some(self.name),
            &[
                Part::Paragraph(format!(
                    "Someone asked to reset the password of your {PRODUCT} account. To choose a \
                     new one, open the link below within {} minutes.",
                    self.minutes_valid
                )),
                Part::Link {
                    label: "Choose a new password",
                    url: self.link,
                },
                Part::Paragraph(
                    "If it was not you, ignore this message: your password stays as it is."
                        .to_owned(),
                ),
            ],
        )
    }
}

/// Tells the account holder their password changed.
#[derive(Debug, Clone)]
pub struct PasswordChanged<'a> {
    pub name: &'a str,
}

impl PasswordChanged<'_> {
    pub fn email(&self) -> Rendered {
        render(
            &format!("Your {PRODUCT} password was changed"),
            Some(self.name),
            &[
                Part::Paragraph(format!(
                    "The password of your {PRODUCT} account was just changed."
                )),
                Part::Paragraph(
                    "If you did not do this, reset your password at once and contact support."
                        .to_owned(),
                ),
            ],
        )
    }
}

/// Tells the account holder that failed logins locked their account.
#[derive(Debug, Clone)]
pub struct AccountLocked<'a> {
    pub name: &'a str,
    pub until: DateTime<Utc>,
}

impl AccountLocked<'_> {
    pub fn email(&self) -> Rendered {
        render(
            &format!("Your {PRODUCT} account is locked"),
            Some(self.name),
            &[
                Part::Paragraph(format!(
                    "After too many failed login attempts your {PRODUCT} account is locked until {}.",
                    self.until.format("%Y-%m-%d %H:%M UTC")
                )),
                Part::Paragraph(
                    "If those attempts were not yours, change your password once the lock ends."
                        .to_owned(),
                ),
            ],
        )
    }
}

/// The outcome of an identity verification (KYC) review.
#[derive(Debug, Clone)]
pub struct KycDecision<'a> {
    pub name: &'a str,
    pub approved: bool,
    /// Why it was refused, as the reviewer wrote it; not shown for an approval.
    pub reason: Option<&'a str>,
}

impl KycDecision<'_> {
    pub fn email(&self) -> Rendered {
        if self.approved {
            return render(
                &format!("Your {PRODUCT} identity verification is approved"),
                Some(self.name),
                &[Part::Paragraph(format!(
                    "Your identity has been verified. Every {PRODUCT} service is now open to you."
                ))],
            );
        }
        let mut parts = vec![Part::Paragraph(
            "We could not verify your identity from the documents you sent.".to_owned(),
        )];
        if let Some(reason) = self.reason {
            parts.push(Part::Paragraph(format!("Reason: {reason}")));
        }
        parts.push(Part::Paragraph(
            "You can send new documents from your account page.".to_owned(),
        ));
        render(
            &format!("Your {PRODUCT} identity verification was not approved"),
            Some(self.name),
            &parts,
        )
    }
}

/// Tells the account holder that two-factor authentication was turned on or off.
#[derive(Debug, Clone)]
pub struct TwoFactorChanged<'a> {
    pub name: &'a str,
    pub enabled: bool,
}

impl TwoFactorChanged<'_> {
    pub fn email(&self) -> Rendered {
        let (state, advice) = if self.enabled {
            (
                "on",
                "From now on a login needs a code as well as your password.",
            )
        } else {
            (
                "off",
                "A login now needs only your password. If you did not do this, reset your \
                 password at once and contact support.",
            )
        };
        render(
            &format!("Two-factor authentication is {state} for your {PRODUCT} account"),
            Some(self.name),
            &[
                Part::Paragraph(format!(
                    "Two-factor authentication was turned {state} for your {PRODUCT} account."
                )),
                Part::Paragraph(advice.to_owned()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(\"x\")</script> & 'co'";

    fn every_email(name: &str) -> Vec<Rendered> {
        let until = DateTime::parse_from_rfc3339("2026-11-21T10:30:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        vec![
            VerifyEmail {
                name,
                link: "https://stratus.test/verify?t=1",
            }
            .email(),
            LoginCode {
                name,
                code: "123456",
                minutes_valid: 10,
            }
            .email(),
            PasswordReset {
                name,
                link: "https://stratus.test/reset?t=1",
                minutes_valid: 30,
            }
            .email(),
            PasswordChanged { name }.email(),
            AccountLocked { name, until }.email(),
            KycDecision {
                name,
                approved: true,
                reason: None,
            }
            .email(),
            KycDecision {
                name,
                approved: false,
                reason: Some("blurry photo"),
            }
            .email(),
            TwoFactorChanged {
                name,
                enabled: true,
            }
            .email(),
            TwoFactorChanged {
                name,
                enabled: false,
            }
            .email(),
        ]
    }

    #[test]
    fn escaping_replaces_the_five_special_characters_and_nothing_else() {
        assert_eq!(
            escape_html(HOSTILE),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;"
        );
        assert_eq!(
            escape_html("Ada Lovelace, née Byron"),
            "Ada Lovelace, née Byron"
        );
        assert_eq!(escape_html("&amp;"), "&amp;amp;");
        assert_eq!(escape_html(""), "");
    }

    #[test]
    fn a_hostile_name_is_escaped_in_every_html_body_and_kept_verbatim_in_the_text() {
        for rendered in every_email(HOSTILE) {
            assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
            assert!(
                rendered
                    .html
                    .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
                "{}",
                rendered.html
            );
            assert!(rendered.text.contains(HOSTILE), "{}", rendered.text);
            assert!(
                !rendered.subject.contains("script"),
                "subjects carry no user value"
            );
        }
    }

    #[test]
    fn every_email_names_the_product_in_its_subject_and_both_bodies() {
        for rendered in every_email("Ada") {
            assert!(rendered.subject.contains(PRODUCT), "{}", rendered.subject);
            assert!(rendered.text.contains(PRODUCT), "{}", rendered.text);
            assert!(rendered.html.starts_with("<!DOCTYPE html>"));
            assert!(rendered.html.contains(PRODUCT));
            assert!(rendered.text.starts_with("Hello Ada,"));
        }
    }

    #[test]
    fn the_verification_link_is_in_both_bodies_and_escaped_in_the_html_attribute() {
        let link = "https://stratus.test/verify?token=abc&account=42";

        let rendered = VerifyEmail { name: "Ada", link }.email();

        assert!(rendered.text.contains(link), "{}", rendered.text);
        assert!(
            rendered
                .html
                .contains("href=\"https://stratus.test/verify?token=abc&amp;account=42\""),
            "{}",
            rendered.html
        );
    }

    #[test]
    fn the_reset_link_and_its_validity_are_in_both_bodies() {
        let link = "https://stratus.test/reset?token=r3s3t";

        let rendered = PasswordReset {
            name: "Ada",
            link,
            minutes_valid: 30,
        }
        .email();

        for body in [&rendered.text, &rendered.html] {
            assert!(body.contains(link), "{body}");
            assert!(body.contains("30 minutes"), "{body}");
        }
    }

    #[test]
    fn a_login_code_is_in_the_email_bodies_and_the_sms() {
        let code = LoginCode {
            name: "Ada",
            code: "482913",
            minutes_valid: 10,
        };

        let email = code.email();
        let sms = code.sms();

        assert!(email.text.contains("482913") && email.html.contains("482913"));
        assert!(
            sms.contains("482913") && sms.contains("10 minutes"),
            "{sms}"
        );
    }

    #[test]
    fn every_sms_fits_one_segment() {
        let texts = [
            LoginCode {
                name: "Ada",
                code: "12345678",
                minutes_valid: 10,
            }
            .sms(),
            PhoneCode {
                code: "12345678",
                minutes_valid: 15,
            }
            .sms(),
        ];
        for text in texts {
            assert!(text.chars().count() <= SMS_SEGMENT_CHARS, "{text}");
            assert!(text.contains(PRODUCT));
        }
    }

    #[test]
    fn a_refused_verification_gives_its_escaped_reason_and_an_approval_gives_none() {
        let refused = KycDecision {
            name: "Ada",
            approved: false,
            reason: Some("document <expired>"),
        }
        .email();
        let approved = KycDecision {
            name: "Ada",
            approved: true,
            reason: Some("not shown"),
        }
        .email();

        assert!(refused.text.contains("Reason: document <expired>"));
        assert!(refused.html.contains("Reason: document &lt;expired&gt;"));
        assert!(refused.subject.contains("not approved"));
        assert!(!approved.text.contains("not shown"));
        assert!(approved.subject.contains("approved") && !approved.subject.contains("not"));
    }

    #[test]
    fn the_lock_end_is_shown_in_utc() {
        let until = DateTime::parse_from_rfc3339("2026-11-21T10:30:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();

        let rendered = AccountLocked { name: "Ada", until }.email();

        assert!(
            rendered.text.contains("2026-11-21 10:30 UTC"),
            "{}",
            rendered.text
        );
    }
}
