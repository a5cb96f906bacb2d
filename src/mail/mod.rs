//! Outgoing mail: SMTP (lettre) when `OXIDP_SMTP_URL` is set, else one `.eml` file per message
//! in `OXIDP_MAIL_DIR` (the default, and what tests read).

use std::path::PathBuf;

use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub enum Mailer {
    Files(PathBuf),
    Smtp { transport: AsyncSmtpTransport<Tokio1Executor>, from: Mailbox },
}

#[derive(Debug, thiserror::Error)]
#[error("mail: {0}")]
pub struct MailError(pub String);

impl Mailer {
    pub fn from_config(smtp_url: Option<&str>, mail_dir: &str, issuer: &str) -> Result<Mailer, MailError> {
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError(format!("OXIDP_SMTP_URL: {e}")))?
                    .build();
                let host = url::Url::parse(issuer)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or("localhost".into());
                let from = format!("oxidp <no-reply@{host}>")
                    .parse()
                    .map_err(|e| MailError(format!("sender address: {e}")))?;
                Ok(Mailer::Smtp { transport, from })
            }
            None => Ok(Mailer::Files(PathBuf::from(mail_dir))),
        }
    }

    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        match self {
            Mailer::Files(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| MailError(e.to_string()))?;
                let name = format!("{}-{}.eml", chrono_like_now(), uuid::Uuid::new_v4().simple());
                let text = format!("To: {to}\nSubject: {subject}\n\n{body}\n");
                tokio::fs::write(dir.join(name), text).await.map_err(|e| MailError(e.to_string()))
            }
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = to.parse().map_err(|e| MailError(format!("recipient: {e}")))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(subject)
                    .body(body.to_string())
                    .map_err(|e| MailError(e.to_string()))?;
                transport.send(message).await.map(|_| ()).map_err(|e| MailError(e.to_string()))
            }
        }
    }
}

/// Sortable file names without a date library.
fn chrono_like_now() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
