//! Prompts: good practice with this server's tools, written once, filled in
//! with the user's file or table.

use rmcp::model::{
    GetPromptResult, JsonObject, ListPromptsResult, Prompt, PromptArgument, PromptMessage, Role,
};

use crate::error::ToolError;
use crate::resources::TableUri;

const PROFILE_AND_CLEAN: &str = "profile_and_clean";
const EXPLAIN_HISTORY: &str = "explain_history";
const PREPARE_FOR_ANALYSIS: &str = "prepare_for_analysis";

fn arg(name: &str, description: &str, required: bool) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(required)
}

pub fn list() -> ListPromptsResult {
    let mut profile = Prompt::new(
        PROFILE_AND_CLEAN,
        Some(
            "Inspect a file or table, propose fixes, apply the ones you approve, show the history.",
        ),
        Some(vec![
            arg(
                "file",
                "A file to load (or give session_id and table).",
                false,
            ),
            arg("session_id", "The session of a loaded table.", false),
            arg("table", "A loaded table.", false),
            arg("goal", "What the data is for, to weigh the fixes.", false),
        ]),
    );
    profile.title = Some("Profile and clean".into());
    let mut history = Prompt::new(
        EXPLAIN_HISTORY,
        Some("Explain what changed in a table, version by version, and how to undo it."),
        Some(vec![
            arg("session_id", "The table's session.", true),
            arg("table", "The table.", true),
        ]),
    );
    history.title = Some("Explain a table's history".into());
    let mut prepare = Prompt::new(
        PREPARE_FOR_ANALYSIS,
        Some("Check types, missing values, duplicates and outliers of a table before analysis."),
        Some(vec![
            arg("session_id", "The table's session.", true),
            arg("table", "The table.", true),
            arg("target_column", "The column the analysis is about.", false),
        ]),
    );
    prepare.title = Some("Prepare a table for analysis".into());
    ListPromptsResult::with_all_items(vec![profile, history, prepare])
}

/// The prompt `name` with `arguments`, or an error that says what is missing.
pub fn get(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, ToolError> {
    let get = |key: &str| -> Option<String> {
        arguments
            .and_then(|a| a.get(key))
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.trim().to_string()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
            .filter(|s| !s.is_empty())
    };
    let table_of = |prompt: &str| -> Result<(String, String), ToolError> {
        match (get("session_id"), get("table")) {
            (Some(s), Some(t)) => Ok((s, t)),
            _ => Err(ToolError::invalid(format!(
                "prompt {prompt} needs session_id and table (list_sessions and list_tables show them)"
            ))),
        }
    };
    let (description, text) = match name {
        PROFILE_AND_CLEAN => {
            let start = match (get("file"), get("session_id"), get("table")) {
                (Some(file), session, _) => format!(
                    "Profile and clean the file `{file}`.\n\n\
                     1. Call inspect_file on it to see its format, encoding, delimiter, header and sheets. \
                     Then call initialize_data_table{} with the options that fit, and note the session_id and table names it returns.",
                    session
                        .map(|s| format!(" with session_id `{s}`"))
                        .unwrap_or_default()
                ),
                (None, Some(session), Some(table)) => format!(
                    "Profile and clean table `{table}` of session `{session}` ({}).\n\n\
                     1. It is loaded already: call list_tables for session `{session}` to see its version.",
                    TableUri::table(&session, &table).uri()
                ),
                _ => {
                    return Err(ToolError::invalid(
                        "prompt profile_and_clean needs a file, or session_id and table",
                    ));
                }
            };
            let goal = get("goal")
                .map(|g| {
                    format!("\n\nThe data is for: {g}. Weigh each fix by what it means for that.")
                })
                .unwrap_or_default();
            (
                "Profile a table, propose fixes, apply the approved ones",
                format!(
                    "{start}\n\
                     2. Call get_table_summary. Note each column's type, missing values (and whether they look intentional, \
                     such as 'not applicable'), duplicate rows, and suspicious values; use value_counts on text columns with few distinct values.\n\
                     3. Propose a numbered cleaning plan: for each step the tool and arguments you would use \
                     (cast_columns, fill_missing, mark_intentional_missing, drop_duplicates, rename_columns, filter_rows, drop_columns) and why. \
                     Change nothing yet.\n\
                     4. Ask me which steps to apply. Apply only those, one call each, passing the table's expected_version.\n\
                     5. End with get_history and tell me how to undo any step (undo with steps, or redo).{goal}"
                ),
            )
        }
        EXPLAIN_HISTORY => {
            let (session, table) = table_of(EXPLAIN_HISTORY)?;
            (
                "Explain a table's history",
                format!(
                    "Explain the history of table `{table}` in session `{session}`.\n\n\
                     Call get_history for it (or read the resource {}). Then, in plain language:\n\
                     - what each version changed, who made it and when, and which version is current;\n\
                     - which steps undo would take back (and with how many steps), and what redo would restore;\n\
                     - which steps removed rows or columns, with the counts before and after.\n\
                     Do not change the table.",
                    TableUri {
                        session_id: session.clone(),
                        table: table.clone(),
                        history: true,
                    }
                    .uri()
                ),
            )
        }
        PREPARE_FOR_ANALYSIS => {
            let (session, table) = table_of(PREPARE_FOR_ANALYSIS)?;
            let target = get("target_column")
                .map(|c| {
                    format!(
                        "\n5. The analysis is about `{c}`: call value_counts on it (or get_table_summary with columns [\"{c}\"]), \
                         say how many rows lack it, and whether those rows should be dropped (drop_missing with columns [\"{c}\"])."
                    )
                })
                .unwrap_or_default();
            (
                "Prepare a table for analysis",
                format!(
                    "Get table `{table}` of session `{session}` ready for analysis.\n\n\
                     1. Types: call get_table_summary. List columns whose type looks wrong (numbers or dates held as text) \
                     and fix them with cast_columns.\n\
                     2. Missing values: per column, decide to fill (fill_missing: mean/median for numbers, mode or a constant for categories, \
                     forward for time series), drop (drop_missing) or mark as intentional (mark_intentional_missing), and say why.\n\
                     3. Duplicates: if the summary reports duplicate rows, drop_duplicates (with subset when only some columns identify a row).\n\
                     4. Outliers: for each numeric column, compare min/max with the quartiles from the summary; count values beyond \
                     1.5 × IQR with query_sql (SELECT COUNT(*) FROM \"{table}\" WHERE …) and ask me before removing any.{target}\n\
                     Finish with a short report: what you changed, the version after each change, and how to undo it."
                ),
            )
        }
        other => {
            return Err(ToolError::invalid(format!(
                "there is no prompt '{other}'; the prompts are {PROFILE_AND_CLEAN}, {EXPLAIN_HISTORY} and {PREPARE_FOR_ANALYSIS}"
            )));
        }
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(description),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> JsonObject {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect()
    }

    fn text(result: &GetPromptResult) -> String {
        result.messages[0]
            .content
            .as_text()
            .map(|t| t.text.clone())
            .unwrap_or_default()
    }

    #[test]
    fn every_listed_prompt_renders_with_its_arguments() {
        for prompt in list().prompts {
            let given = args(&[
                ("file", "/data/q1.csv"),
                ("session_id", "sales"),
                ("table", "orders"),
                ("goal", "a churn model"),
                ("target_column", "churned"),
            ]);
            let result = get(&prompt.name, Some(&given)).unwrap();
            let body = text(&result);
            for a in prompt.arguments.unwrap_or_default() {
                let value = given[&a.name].as_str().unwrap();
                // profile_and_clean starts from the file when given both.
                if prompt.name == PROFILE_AND_CLEAN && a.name == "table" {
                    continue;
                }
                assert!(
                    body.contains(value),
                    "{}: {} missing in {body}",
                    prompt.name,
                    a.name
                );
            }
        }
    }

    #[test]
    fn missing_arguments_say_what_is_needed() {
        let e = get(EXPLAIN_HISTORY, None).unwrap_err().to_string();
        assert!(e.contains("session_id and table"), "{e}");
        let e = get(PROFILE_AND_CLEAN, Some(&args(&[("table", "t")])))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a file, or session_id and table"), "{e}");
        let e = get("nope", None).unwrap_err().to_string();
        assert!(e.contains(PREPARE_FOR_ANALYSIS), "{e}");
        let from_table = get(
            PROFILE_AND_CLEAN,
            Some(&args(&[("session_id", "s"), ("table", "t")])),
        )
        .unwrap();
        assert!(text(&from_table).contains("dataframe://s/t"));
    }
}
