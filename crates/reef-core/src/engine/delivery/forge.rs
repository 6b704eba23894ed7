//! GitHub's REST API as the delivery loop uses it: find or open a change's pull request, and
//! read what came back on it — its state, review comments, reviews and check runs.
//!
//! Invariants: the token goes only into the `Authorization` header of requests to the product's
//! configured API URL, never into an error, log or event; every answer is bounded
//! ([`MAX_ANSWER`], [`MAX_PAGES`]) and parsed field by field, so a forge (or a stand-in) that
//! answers garbage gets a clear error, never a panic or an unbounded read.

use crate::config::Forge;
use crate::secret::Secret;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;

/// Bytes of one answer REEF reads.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// Pages of a list REEF follows (100 items each).
const MAX_PAGES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("the forge could not be reached: {0}")]
    Unreachable(String),
    #[error("the forge answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the forge's answer is not what GitHub sends: {0}")]
    Malformed(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullHead {
    pub sha: String,
    #[serde(rename = "ref")]
    pub branch: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    pub number: u64,
    pub html_url: String,
    /// open or closed.
    pub state: String,
    #[serde(default)]
    pub merged: bool,
    #[serde(default)]
    pub merged_at: Option<String>,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    pub head: PullHead,
    pub base: PullHead,
}

impl Pull {
    pub fn is_merged(&self) -> bool {
        self.merged || self.merged_at.is_some()
    }
}

/// A comment on a line of a pull request's diff.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewComment {
    pub id: u64,
    pub path: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub original_line: Option<u64>,
    pub body: String,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub author_association: String,
}

/// Whether an author's association with the repository gives them write access (OWNER, MEMBER,
/// COLLABORATOR): only their words reach the builder, on a repository anyone may comment on.
pub fn has_write_access(association: &str) -> bool {
    matches!(association, "OWNER" | "MEMBER" | "COLLABORATOR")
}

/// Whether `s` is a full commit id.
pub fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A comment in a pull request's conversation (not on a line).
#[derive(Debug, Clone, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub author_association: String,
}

/// A review: APPROVED, CHANGES_REQUESTED, COMMENTED, …
#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    pub id: u64,
    pub state: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub author_association: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckOutput {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
}

/// One CI run on a commit.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRun {
    pub name: String,
    /// queued, in_progress or completed.
    pub status: String,
    /// success, failure, neutral, cancelled, timed_out, action_required, skipped, stale.
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub output: Option<CheckOutput>,
}

impl CheckRun {
    /// Completed with a result that should stop a merge.
    pub fn failed(&self) -> bool {
        self.status == "completed" && matches!(self.conclusion.as_deref(), Some("failure" | "timed_out" | "cancelled" | "action_required"))
    }
}

#[derive(Deserialize)]
struct CheckRuns {
    check_runs: Vec<CheckRun>,
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    message: String,
}

/// One product's repository on GitHub.
pub struct GitHub {
    http: reqwest::Client,
    api: String,
    repo: String,
    token: Secret,
}

impl GitHub {
    pub fn new(forge: &Forge, token: Secret) -> Result<Self, ForgeError> {
        // One client (its connection pool and TLS roots) for every pull request the watcher reads.
        static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
        let http = match HTTP.get() {
            Some(c) => c.clone(),
            None => {
                let c = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .user_agent(concat!("reef/", env!("CARGO_PKG_VERSION")))
                    // A redirect could carry the token to another host.
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| ForgeError::Unreachable(e.to_string()))?;
                HTTP.get_or_init(|| c).clone()
            }
        };
        Ok(Self { http, api: forge.api_url.clone(), repo: forge.repository.clone(), token })
    }

    fn owner(&self) -> &str {
        self.repo.split('/').next().unwrap_or_default()
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(Vec<u8>, Option<String>), ForgeError> {
        let mut resp = req
            .bearer_auth(self.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| ForgeError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        let next = resp.headers().get("link").and_then(|v| v.to_str().ok()).and_then(next_page);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| ForgeError::Unreachable(e.without_url().to_string()))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(ForgeError::Malformed(format!("an answer larger than {MAX_ANSWER} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let message = serde_json::from_slice::<Problem>(&body).map(|p| p.message).unwrap_or_default();
            let message: String = if message.is_empty() { String::from_utf8_lossy(&body).into() } else { message };
            return Err(ForgeError::Refused { status: status.as_u16(), message: message.chars().take(300).collect() });
        }
        Ok((body, next))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ForgeError> {
        let (body, _) = self.send(self.http.get(format!("{}{path}", self.api))).await?;
        serde_json::from_slice(&body).map_err(|e| ForgeError::Malformed(format!("{path}: {e}")))
    }

    /// Every item of a list, following `Link: rel="next"` on the same API only.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ForgeError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{}{path}{sep}per_page=100", self.api);
        let mut out = vec![];
        for _ in 0..MAX_PAGES {
            let (body, next) = self.send(self.http.get(&url)).await?;
            let page: Vec<T> = serde_json::from_slice(&body).map_err(|e| ForgeError::Malformed(format!("{path}: {e}")))?;
            out.extend(page);
            match next.filter(|n| n.starts_with(&format!("{}/", self.api))) {
                Some(n) => url = n,
                None => break,
            }
        }
        Ok(out)
    }

    /// The open pull request from `branch` (in the same repository), if there is one.
    pub async fn find_open(&self, branch: &str) -> Result<Option<Pull>, ForgeError> {
        let path = format!("/repos/{}/pulls?state=open&head={}:{branch}", self.repo, self.owner());
        Ok(self.list::<Pull>(&path).await?.into_iter().find(|p| p.head.branch == branch))
    }

    pub async fn open(&self, title: &str, branch: &str, base: &str, body: &str) -> Result<Pull, ForgeError> {
        let req = self.http.post(format!("{}/repos/{}/pulls", self.api, self.repo)).json(&serde_json::json!({
            "title": title, "head": branch, "base": base, "body": body, "maintainer_can_modify": false,
        }));
        match self.send(req).await {
            Ok((answer, _)) => serde_json::from_slice(&answer).map_err(|e| ForgeError::Malformed(format!("the new pull request: {e}"))),
            // Opened meanwhile (another process between our find and open): that one is it.
            Err(ForgeError::Refused { status: 422, message }) => {
                self.find_open(branch).await?.ok_or(ForgeError::Refused { status: 422, message })
            }
            Err(e) => Err(e),
        }
    }

    pub async fn pull(&self, number: u64) -> Result<Pull, ForgeError> {
        self.get(&format!("/repos/{}/pulls/{number}", self.repo)).await
    }

    pub async fn review_comments(&self, number: u64) -> Result<Vec<ReviewComment>, ForgeError> {
        self.list(&format!("/repos/{}/pulls/{number}/comments", self.repo)).await
    }

    /// The pull request's conversation (GitHub keeps it as the issue's comments).
    pub async fn conversation(&self, number: u64) -> Result<Vec<IssueComment>, ForgeError> {
        self.list(&format!("/repos/{}/issues/{number}/comments", self.repo)).await
    }

    pub async fn reviews(&self, number: u64) -> Result<Vec<Review>, ForgeError> {
        self.list(&format!("/repos/{}/pulls/{number}/reviews", self.repo)).await
    }

    pub async fn check_runs(&self, sha: &str) -> Result<Vec<CheckRun>, ForgeError> {
        let r: CheckRuns = self.get(&format!("/repos/{}/commits/{sha}/check-runs?per_page=100", self.repo)).await?;
        Ok(r.check_runs)
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_page(link: &str) -> Option<String> {
    link.split(',').find(|p| p.contains("rel=\"next\"")).and_then(|p| {
        let (a, b) = (p.find('<')?, p.find('>')?);
        (a < b).then(|| p[a + 1..b].to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_page_is_read_from_a_link_header() {
        let h = r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=5>; rel="last""#;
        assert_eq!(super::next_page(h).as_deref(), Some("https://api.github.com/repositories/1/pulls?page=2"));
        assert_eq!(super::next_page(r#"<https://x/?page=1>; rel="prev""#), None);
        assert_eq!(super::next_page("garbage"), None);
    }
}
