//! `GET /api/v1/events`: live updates as server-sent events. The stream tails the request
//! events of the audit log (shared by every replica) and sends only those about requests the
//! caller may see. `Last-Event-ID` resumes after a reconnect.

use crate::error::ApiResult;
use crate::extract::Principal;
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
    let events = stream::unfold(
        (app, principal, start, Vec::<Event>::new()),
        |(app, principal, mut seq, mut queue)| async move {
            loop {
                if let Some(event) = queue.pop() {
                    return Some((Ok(event), (app, principal, seq, queue)));
                }
                tokio::time::sleep(POLL).await;
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
