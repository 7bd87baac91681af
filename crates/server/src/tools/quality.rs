//! Data-quality tools: outliers, near-duplicate values, validation rules.

use dfmcp_ops::fuzzy::{FuzzyOptions, MergeGroup, Similarity, find_similar};
use dfmcp_ops::outliers::{Action, Method, describe, outliers};
use dfmcp_ops::validate::{Rule, validate};
use dfmcp_ops::{Operation, OpsError, code_warnings};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::ToolError;
use crate::render::{cell, thousands};
use crate::server::DataFrameServer;
use crate::wire::*;

#[tool_router(router = quality_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Find outliers in numeric columns by IQR (k 1.5) or z-score (k 3): bounds, counts, example rows. action: report (default, changes nothing), flag (a boolean column) or null (make them missing).",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn find_outliers(
        &self,
        Parameters(req): Parameters<FindOutliersRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let method = match req.method {
            Some(OutlierMethodWire::Zscore) => Method::Zscore,
            _ => Method::Iqr,
        };
        let action = match req.action.unwrap_or(OutlierActionWire::Report) {
            OutlierActionWire::Report => Action::Report,
            OutlierActionWire::Flag => Action::Flag,
            OutlierActionWire::Null => Action::Null,
        };
        if action != Action::Report {
            let op = Operation::Outliers {
                columns: req.columns,
                method,
                threshold: req.threshold,
                then: action,
                flag_column: req.flag_column,
            };
            let change = self.mutate(&caller, &req.target, &req.write, op).await?;
            return Ok(self.reply(&change));
        }
        let columns = req.columns;
        let threshold = req.threshold;
        let report = self
            .report(&caller, &req.target, move |df| {
                let (_, reports) = outliers(df, &columns, method, threshold, Action::Report, None)?;
                let mut text = format!("Outliers ({} × {}):\n", method.name(), {
                    threshold.unwrap_or(method.default_threshold())
                });
                for r in &reports {
                    text.push_str(&format!(
                        "- {} of {} values present{}; example rows (0-based): {:?}\n",
                        describe(std::slice::from_ref(r), method, threshold),
                        thousands(r.checked as u64),
                        if r.missing > 0 {
                            format!(
                                ", {} missing ({} intentional) not checked",
                                r.missing, r.intentional_missing
                            )
                        } else {
                            String::new()
                        },
                        r.example_rows
                    ));
                }
                for w in code_warnings(&reports) {
                    text.push_str(&format!("Note: {w}\n"));
                }
                text.push_str(
                    "Nothing was changed: call again with action flag or null to act on them.",
                );
                Ok((text, json!({ "columns": reports })))
            })
            .await?;
        Ok(self.reply(&report))
    }

    #[tool(
        description = "Find near-duplicate text values (typos, case, accents, word order): clusters with row counts and a suggested representative, for merge_duplicates.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn find_duplicates(
        &self,
        Parameters(req): Parameters<FindDuplicatesRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let options = FuzzyOptions {
            method: match req.method {
                Some(SimilarityWire::Token) => Similarity::Token,
                _ => Similarity::Edit,
            },
            threshold: req.threshold,
            limit: req.limit.unwrap_or(20).clamp(1, 200),
            ..FuzzyOptions::default()
        };
        let columns = req.columns;
        let report = self
            .report(&caller, &req.target, move |df| {
                let r = find_similar(df, &columns, &options)?;
                let mut text = format!(
                    "{} cluster{} of similar values in {} ({} distinct values, {:?} similarity ≥ {}, {} comparisons).\n",
                    r.total_clusters,
                    if r.total_clusters == 1 { "" } else { "s" },
                    r.columns.join(" + "),
                    thousands(r.distinct_values as u64),
                    r.method,
                    r.threshold,
                    thousands(r.pairs_compared)
                );
                for (i, c) in r.clusters.iter().enumerate() {
                    let values: Vec<String> = c
                        .values
                        .iter()
                        .map(|v| format!("{} ({})", cell(&Value::String(v.value.clone())), v.rows))
                        .collect();
                    text.push_str(&format!(
                        "{}. → {} · {} rows: {}{}\n",
                        i + 1,
                        cell(&Value::String(c.representative.clone())),
                        thousands(c.rows as u64),
                        values.join(", "),
                        if c.distinct > c.values.len() {
                            format!(" … {} values in all", c.distinct)
                        } else {
                            String::new()
                        }
                    ));
                }
                if r.clusters.len() < r.total_clusters {
                    text.push_str(&format!(
                        "Showing the {} largest of {}; raise limit (≤ 200) or the threshold.\n",
                        r.clusters.len(),
                        r.total_clusters
                    ));
                }
                if let Some(m) = &r.message {
                    text.push_str(&format!("Note: {m}\n"));
                }
                if r.total_clusters > 0 {
                    text.push_str("To merge, call merge_duplicates with groups [{\"values\": [...], \"into\": \"...\"}].");
                }
                let value = serde_json::to_value(&r).unwrap_or_default();
                Ok((text, value))
            })
            .await?;
        Ok(self.reply(&report))
    }

    #[tool(
        description = "Replace each group of values in a text column by one value (e.g. the clusters find_duplicates reports).",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn merge_duplicates(
        &self,
        Parameters(req): Parameters<MergeDuplicatesRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let op = Operation::MergeDuplicates {
            column: req.column,
            groups: req
                .groups
                .into_iter()
                .map(|g| MergeGroup {
                    values: g.values,
                    into: g.into,
                })
                .collect(),
        };
        let change = self.mutate(&caller, &req.target, &req.write, op).await?;
        Ok(self.reply(&change))
    }

    #[tool(
        description = "Check rules on columns and report violations per rule with example rows. Changes nothing.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn validate(
        &self,
        Parameters(req): Parameters<ValidateRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let rules: Vec<Rule> = req
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::from_value(Value::Object(r.clone())).map_err(|e| {
                    ToolError::invalid(format!(
                        "rule {} ({}) is not a rule: {e}. Write e.g. {{\"column\": \"age\", \"rule\": \"range\", \"min\": 0}}; rules: not_null, unique, range, allowed, regex, type",
                        i + 1,
                        Value::Object(r)
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        if rules.is_empty() {
            return Err(ToolError::invalid(
                "give at least one rule, e.g. {\"column\": \"id\", \"rule\": \"unique\"}",
            ));
        }
        let examples = req.examples.unwrap_or(5).min(20);
        let report = self
            .report(&caller, &req.target, move |df| {
                let r = validate(df, &rules, examples)?;
                let failed = r.rules.iter().filter(|x| x.violations > 0).count();
                let mut text = format!(
                    "{} of {} rule{} passed on {} rows.\n",
                    r.rules.len() - failed,
                    r.rules.len(),
                    if r.rules.len() == 1 { "" } else { "s" },
                    thousands(r.rows as u64)
                );
                for x in &r.rules {
                    let mark = if x.violations == 0 { "✓" } else { "✗" };
                    text.push_str(&format!(
                        "{mark} {}: {} violation{} of {} checked",
                        x.description,
                        thousands(x.violations as u64),
                        if x.violations == 1 { "" } else { "s" },
                        thousands(x.checked as u64)
                    ));
                    if !x.examples.is_empty() {
                        let shown: Vec<String> = x
                            .examples
                            .iter()
                            .map(|v| format!("row {}: {}", v.row, cell(&v.value)))
                            .collect();
                        text.push_str(&format!(" — {}", shown.join("; ")));
                    }
                    text.push('\n');
                }
                let value = serde_json::to_value(&r).unwrap_or_default();
                Ok((text, value))
            })
            .await?;
        Ok(self.reply(&report))
    }
}

impl DataFrameServer {
    /// Runs a read-only report over a table's current version, off the
    /// async runtime.
    pub(crate) async fn report<F>(
        &self,
        caller: &Caller,
        target: &TableRef,
        f: F,
    ) -> Result<ReportResponse, ToolError>
    where
        F: FnOnce(&polars::prelude::DataFrame) -> Result<(String, Value), OpsError>
            + Send
            + 'static,
    {
        let session = caller.stored(&target.session_id)?;
        let loaded = self.store().load(&session, &target.table).await?;
        let version = loaded.state.head.version;
        let df = loaded.df;
        let (text, value) = self.store().compute(&session, move |_| f(&df)).await??;
        Ok(ReportResponse {
            session_id: target.session_id.clone(),
            table: target.table.clone(),
            version,
            text: format!("{text}\n(table `{}` at version {version})", target.table),
            report: crate::wire::object(value),
        })
    }
}
