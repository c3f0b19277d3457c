//! `GET /api/v1/events`: live updates as server-sent events. The stream tails the request
//! events of the audit log (shared by every replica) and sends only those about requests the
//! caller may see. `Last-Event-ID` resumes after a reconnect. The stream ends when its
//! credential does: sign-out, a session's end, a token's revocation or expiry, a disabled account.

use crate::error::ApiResult;
use crate::extract::{Credential, Principal};
use crate::ops::requests::{event_stream_start, events_after};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(250);

/// Events visible to `principal` after `seq`, as server-sent events, and the new cursor.
async fn next_batch(app: &AppState, principal: &Principal, seq: i64) -> ApiResult<(Vec<Event>, i64)> {
    let (found, cursor) = events_after(app, principal, seq).await?;
    let events = found
        .into_iter()
        .map(|found| {
            let (entry, record) = (found.entry, found.record);
            let data = json!({
                "id": entry.id,
                "type": format!("request.{}", entry.action),
                "occurredAt": crate::time::format(entry.at),
                "request": {
                    "id": record.id,
                    "status": found.status,
                    "objectName": record.object_name,
                    "resourceType": record.resource_type,
                    "operation": record.operation,
                },
            });
            Event::default().id(entry.seq.to_string()).event(format!("request.{}", entry.action)).data(data.to_string())
        })
        .collect();
    Ok((events, cursor))
}

/// The caller again, as their session or token finds them now; `None` once it has ended.
async fn still_signed_in(app: &AppState, principal: &Principal) -> ApiResult<Option<Principal>> {
    let now = app.now();
    let access = match &principal.credential {
        Credential::Session { id_hash } => app.store.session(id_hash, now).await?.map(|s| s.access),
        Credential::Token { hash } => app.store.account_for_token(hash, None, now).await?,
    };
    Ok(access.map(|access| Principal::new(access, principal.credential.clone())))
}

/// `GET /api/v1/events`
#[utoipa::path(
    get,
    path = "/events",
    tag = "requests",
    summary = "Live request events as server-sent events (Last-Event-ID resumes)",
    params(("Last-Event-ID" = Option<i64>, Header, description = "resume after this event")),
    responses(
        (status = 200, description = "a stream of request.* events", content_type = "text/event-stream", body = String)
    )
)]
pub async fn stream(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    let start = match resume {
        Some(seq) => seq,
        None => event_stream_start(&app).await?,
    };
    let checked = tokio::time::Instant::now();
    let events = stream::unfold(
        (app, principal, start, Vec::<Event>::new(), checked),
        |(app, mut principal, mut seq, mut queue, mut checked)| async move {
            loop {
                if let Some(event) = queue.pop() {
                    return Some((Ok(event), (app, principal, seq, queue, checked)));
                }
                tokio::time::sleep(POLL).await;
                if checked.elapsed() >= app.config.event_credential_check {
                    checked = tokio::time::Instant::now();
                    match still_signed_in(&app, &principal).await {
                        // Signed out, the session or token ended, or the account disabled.
                        Ok(None) => return None,
                        // What the caller may see follows their current groups and roles.
                        Ok(Some(current)) => principal = current,
                        Err(e) => tracing::debug!(detail = %e.detail, "event stream credential check failed"),
                    }
                }
                match next_batch(&app, &principal, seq).await {
                    Ok((mut batch, cursor)) => {
                        seq = cursor;
                        batch.reverse();
                        queue = batch;
                    }
                    // A passing database error: try again on the next poll.
                    Err(e) => tracing::debug!(detail = %e.detail, "event stream poll failed"),
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
