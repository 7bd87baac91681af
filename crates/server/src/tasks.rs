//! Loads and exports as MCP tasks (SEP-2663): a client that declares the
//! tasks extension gets a task handle at once, and the call runs on in the
//! background. Its state is kept in the store (`Store::task_*`) under the
//! session it works on, so any server process on the same store answers
//! `tasks/get` and `tasks/cancel` for it, and a task whose process died is
//! reported failed once its heartbeats stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfmcp_storage::{TaskEnd, TaskState};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, CreateTaskResult, DetailedTask,
    GetTaskParams, GetTaskResult, JsonObject, Task, TaskPayload, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use tokio_util::sync::CancellationToken;

use crate::caller::Caller;
use crate::server::DataFrameServer;

/// The tools that run as tasks when the client asks for them.
pub const TASK_TOOLS: &[&str] = &["initialize_data_table", "export_table"];

/// How often clients are told to poll.
const POLL_MS: u64 = 1_000;
/// How often a running task looks for a cancel request.
const CANCEL_POLL: Duration = Duration::from_millis(250);

/// Marks a call that already runs inside a task.
#[derive(Clone, Copy)]
pub struct InTask;

/// Tasks running in this process, so that a cancel that reaches this
/// process stops them at once (others see the request at their next beat).
#[derive(Clone, Default)]
pub struct LocalTasks(Arc<Mutex<HashMap<String, CancellationToken>>>);

impl LocalTasks {
    fn insert(&self, uid: &str, token: CancellationToken) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid.to_string(), token);
    }

    fn remove(&self, uid: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(uid);
    }

    fn cancel(&self, uid: &str) {
        if let Some(token) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(uid) {
            token.cancel();
        }
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn error_object(code: i32, message: &str) -> JsonObject {
    let mut error = JsonObject::new();
    error.insert("code".into(), code.into());
    error.insert("message".into(), message.into());
    error
}

/// A task id as a caller sees it: their session id and the task's uid.
fn parse_task_id<'a>(caller: &Caller, id: &'a str) -> Result<(String, &'a str), ErrorData> {
    let unknown = || {
        ErrorData::invalid_params(
            format!("there is no task '{id}'; use the taskId a tools/call answered with"),
            None,
        )
    };
    let (session, uid) = id.split_once(':').ok_or_else(unknown)?;
    let stored = caller.stored(session).map_err(|_| unknown())?;
    Ok((stored, uid))
}

impl DataFrameServer {
    /// Whether this call should become a task: a task tool, asked by a
    /// client that declared the extension, not already inside a task.
    pub(crate) fn wants_task(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> bool {
        TASK_TOOLS.contains(&request.name.as_ref())
            && context.extensions.get::<InTask>().is_none()
            && context
                .client_capabilities()
                .is_some_and(|c| c.supports_tasks())
    }

    /// Starts `request` as a task and answers with its handle.
    pub(crate) async fn start_task(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
        caller: &Caller,
    ) -> Result<CallToolResponse, ErrorData> {
        let invalid = |e: crate::error::ToolError| {
            ErrorData::invalid_params(caller.scrub(&e.to_string()), None)
        };
        let args = request.arguments.get_or_insert_with(JsonObject::new);
        let text = |key: &str| args.get(key).and_then(|v| v.as_str()).map(str::to_string);
        // The task is kept in the session the call works on: a load into a
        // new session makes that session first (a retry with the same
        // request_id finds the same one, as the tool itself would).
        let (stored, created) = self
            .target_session(
                caller,
                text("session_id").as_deref(),
                text("request_id").as_deref(),
            )
            .await
            .map_err(invalid)?;
        let shown = caller.shown(&stored).to_string();
        args.insert("session_id".into(), shown.clone().into());
        let uid = dfmcp_storage::new_uid();
        let start = self
            .store()
            .task_start(&stored, &uid, &request.name)
            .await
            .map_err(|e| invalid(e.into()))?;
        let task_id = format!("{shown}:{uid}");
        let created_at = iso(start.created_ms);
        let started = format!("{} started", start.tool);

        let mut call_context = context.clone();
        let token = CancellationToken::new();
        call_context.ct = token.clone();
        // The request is answered now: no progress for it, no second task.
        call_context.meta = Default::default();
        call_context.extensions.insert(InTask);
        let phase = crate::progress::Phase::default();
        call_context.extensions.insert(phase.clone());
        self.tasks.insert(&uid, token.clone());
        let this = self.clone();
        let tool = request.name.to_string();
        let caller = caller.clone();
        tokio::spawn(async move {
            let store = this.store();
            let began = Instant::now();
            let call = this.run_call(request, call_context, caller);
            tokio::pin!(call);
            // Every tick looks for a cancel request (so one from another
            // process stops the work within a tick); every BEAT_MS also
            // says the task is alive.
            let mut tick = tokio::time::interval(CANCEL_POLL);
            tick.tick().await;
            let per_beat = (dfmcp_storage::BEAT_MS as u128 / CANCEL_POLL.as_millis()).max(1) as u64;
            let mut ticks = 0u64;
            let outcome = loop {
                tokio::select! {
                    outcome = &mut call => break outcome,
                    _ = tick.tick() => {
                        ticks += 1;
                        let asked = if ticks.is_multiple_of(per_beat) {
                            let message = phase.message(&tool, began);
                            store.task_beat(&stored, &uid, &start, &message).await
                        } else {
                            store.task_cancel_requested(&stored, &uid).await
                        };
                        match asked {
                            Ok(true) => token.cancel(),
                            Ok(false) => {}
                            // A missed beat is a late beat: the next one may land.
                            Err(e) => tracing::warn!(error = %e, "recording a task heartbeat"),
                        }
                    }
                }
            };
            // A call that finished before the cancel reached it keeps its
            // result: what it committed is there.
            let cancelled = token.is_cancelled();
            let (end, result) = match outcome {
                Ok(CallToolResponse::Complete(result))
                    if cancelled && result.is_error == Some(true) =>
                {
                    (TaskEnd::Cancelled, serde_json::json!({}))
                }
                Err(_) if cancelled => (TaskEnd::Cancelled, serde_json::json!({})),
                Ok(CallToolResponse::Complete(mut result)) => {
                    if created
                        && let Some(structured) = &mut result.structured_content
                        && let Some(map) = structured.as_object_mut()
                    {
                        map.insert("created_session".into(), true.into());
                    }
                    let value = serde_json::to_value(&result).unwrap_or_default();
                    (TaskEnd::Completed, value)
                }
                Ok(_) => (
                    TaskEnd::Failed,
                    serde_json::Value::Object(error_object(-32603, "the call did not complete")),
                ),
                Err(e) => (
                    TaskEnd::Failed,
                    serde_json::Value::Object(error_object(e.code.0, &e.message)),
                ),
            };
            if let Err(e) = store.task_end(&stored, &uid, end, result).await {
                tracing::warn!(error = %e, "recording the end of a task");
            }
            this.tasks.remove(&uid);
        });
        let task = Task::new(task_id, TaskStatus::Working, created_at.clone(), created_at)
            .with_status_message(started)
            .with_poll_interval_ms(POLL_MS);
        Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    pub(crate) async fn task_status(
        &self,
        request: GetTaskParams,
        caller: &Caller,
    ) -> Result<GetTaskResult, ErrorData> {
        let (stored, uid) = parse_task_id(caller, &request.task_id)?;
        let state = self
            .store()
            .task(&stored, uid)
            .await
            .map_err(|e| ErrorData::invalid_params(caller.scrub(&e.to_string()), None))?
            .ok_or_else(|| {
                ErrorData::invalid_params(format!("there is no task '{}'", request.task_id), None)
            })?;
        let id = request.task_id.clone();
        let detailed = match state {
            TaskState::Working {
                start,
                message,
                updated_ms,
                cancel_requested,
            } => {
                let mut message = message.unwrap_or_else(|| format!("{} started", start.tool));
                if cancel_requested {
                    message.push_str("; cancelling");
                }
                DetailedTask::new(
                    Task::new(
                        id,
                        TaskStatus::Working,
                        iso(start.created_ms),
                        iso(updated_ms),
                    )
                    .with_status_message(message)
                    .with_poll_interval_ms(POLL_MS),
                    TaskPayload::Working,
                )
            }
            TaskState::Ended {
                start,
                end,
                at_ms,
                result,
            } => {
                let task = Task::new(id, TaskStatus::Working, iso(start.created_ms), iso(at_ms));
                let payload = match (end, result) {
                    (TaskEnd::Completed, serde_json::Value::Object(result)) => {
                        TaskPayload::Completed { result }
                    }
                    (TaskEnd::Failed, serde_json::Value::Object(error)) => {
                        TaskPayload::Failed { error }
                    }
                    (TaskEnd::Cancelled, _) => TaskPayload::Cancelled,
                    _ => TaskPayload::Failed {
                        error: error_object(-32603, "the task's record is unreadable"),
                    },
                };
                DetailedTask::new(task, payload)
            }
            TaskState::Lost {
                start,
                last_seen_ms,
            } => DetailedTask::new(
                Task::new(
                    id,
                    TaskStatus::Working,
                    iso(start.created_ms),
                    iso(last_seen_ms),
                )
                .with_status_message("the server process running it stopped"),
                TaskPayload::Failed {
                    error: error_object(
                        -32603,
                        &format!(
                            "the server process running {} stopped before it finished; what it had not committed was not kept: run the call again",
                            start.tool
                        ),
                    ),
                },
            ),
        };
        Ok(GetTaskResult::new(detailed))
    }

    pub(crate) async fn task_cancel(
        &self,
        request: CancelTaskParams,
        caller: &Caller,
    ) -> Result<(), ErrorData> {
        let (stored, uid) = parse_task_id(caller, &request.task_id)?;
        let found = self
            .store()
            .task_cancel(&stored, uid)
            .await
            .map_err(|e| ErrorData::invalid_params(caller.scrub(&e.to_string()), None))?;
        if !found {
            return Err(ErrorData::invalid_params(
                format!("there is no task '{}'", request.task_id),
                None,
            ));
        }
        self.tasks.cancel(uid);
        Ok(())
    }
}
