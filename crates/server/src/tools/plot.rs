//! Charts: a PNG of a table, returned as MCP image content and optionally
//! written to a file.

use base64::Engine;
use dfmcp_plot::{ChartKind, PlotSpec, render};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{tool, tool_router};

use crate::caller::Caller;
use crate::error::ToolError;
use crate::server::DataFrameServer;
use crate::wire::*;

#[tool_router(router = plot_tools, vis = "pub(crate)")]
impl DataFrameServer {
    #[tool(
        description = "Chart a table as a PNG: histogram (x), bar of value counts (x), scatter (x, y), line (y over x), box (x, by), missing (a map of missing values).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn plot(
        &self,
        Parameters(req): Parameters<PlotRequest>,
        Extension(caller): Extension<Caller>,
    ) -> Result<CallToolResult, ToolError> {
        let session = caller.stored(&req.target.session_id)?;
        let target = match req.path.as_deref() {
            Some(_) if self.state.read_only => {
                return Err(ToolError::invalid(
                    "this server is read-only: plot cannot write files; omit path to get the image",
                ));
            }
            Some(path) => {
                let target = self.state.paths.open_write(path)?;
                if target.exists() && !req.overwrite.unwrap_or(false) {
                    return Err(ToolError::invalid(format!(
                        "{} already exists; pass overwrite=true to replace it, or choose another path",
                        target.path.display()
                    )));
                }
                Some(target)
            }
            None => None,
        };
        let spec = PlotSpec {
            kind: match req.kind {
                ChartWire::Histogram => ChartKind::Histogram,
                ChartWire::Bar => ChartKind::Bar,
                ChartWire::Scatter => ChartKind::Scatter,
                ChartWire::Line => ChartKind::Line,
                ChartWire::Box => ChartKind::Box,
                ChartWire::Missing => ChartKind::Missing,
            },
            x: req.x,
            y: req.y,
            by: req.by,
            bins: req.bins,
            top: req.top,
            width: req.width,
            height: req.height,
            title: req.title,
        };
        let loaded = self.store().load(&session, &req.target.table).await?;
        let version = loaded.state.head.version;
        let df = dfmcp_ops::columns::visible(&loaded.df);
        crate::progress::phase(format!(
            "drawing a {} chart of `{}`",
            spec.kind, req.target.table
        ));
        let png = self
            .store()
            .compute(&session, move |_| render(&df, &spec))
            .await?
            .map_err(|e| ToolError::invalid(e.to_string()))?;
        let mut text = format!(
            "{} ({}×{} PNG of table `{}` at version {version}).",
            png.summary, png.width, png.height, req.target.table
        );
        if let Some(target) = target {
            let bytes = png.bytes.clone();
            let shown = target.path.display().to_string();
            tokio::task::spawn_blocking(move || -> Result<(), String> {
                use std::io::Write;
                let (mut file, temp) = target.create_temp().map_err(|e| e.to_string())?;
                let outcome = file
                    .write_all(&bytes)
                    .and_then(|_| file.sync_all())
                    .and_then(|_| target.replace_with(&temp));
                if let Err(e) = outcome {
                    let _ = std::fs::remove_file(&temp);
                    return Err(e.to_string());
                }
                Ok(())
            })
            .await
            .map_err(|e| ToolError::invalid(format!("writing {shown} failed: {e}")))?
            .map_err(|e| ToolError::invalid(format!("writing {shown} failed: {e}")))?;
            text.push_str(&format!(" Written to {shown}."));
        }
        let data = base64::engine::general_purpose::STANDARD.encode(&png.bytes);
        Ok(CallToolResult::success(vec![
            ContentBlock::text(text),
            ContentBlock::image(data, "image/png"),
        ]))
    }
}
