//! The composition root: every frontend (the language server, `tether exec`,
//! and any other) wires the engine here, the same way. The frontend loads
//! the configuration (its sources differ: only an editor has
//! `initializationOptions`) and brings what only it has — who answers the
//! gate's questions, the editor's buffers, its tool sources; the rest —
//! store, model client, gate, redactor, tools — is built here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Engine, EngineParts};
use crate::config::Config;
use crate::gate::{Asker, Gate};
use crate::model::ModelClient;
use crate::store::Store;
use crate::tools::{Buffers, Redactor, ToolSource};

/// What differs between frontends.
pub struct Frontend {
    /// The workspace root (see [`workspace_root`]).
    pub root: PathBuf,
    /// The environment the configuration was read from; the values of its
    /// secret variables are redacted from what the model and the store see.
    pub env: BTreeMap<String, String>,
    /// Who answers the gate's questions (an editor's dialog, or a fixed answer).
    pub asker: Arc<dyn Asker>,
    /// The editor's open buffers ([`crate::tools::NoBuffers`] without one).
    pub buffers: Arc<dyn Buffers>,
    /// Tools found at run time, added to every agent's registry.
    pub tool_sources: Vec<Arc<dyn ToolSource>>,
    /// A store the frontend already opened (ACP: one for all its engines);
    /// `None` opens the one in `config.data_dir`.
    pub store: Option<Store>,
}

/// An assembled engine, and what the person must be told before its first
/// turn (whole sentences: the store moved an unreadable file aside, history
/// is not being saved). The configuration's own warnings are in
/// `engine.config().warnings`.
pub struct Assembled {
    pub engine: Arc<Engine>,
    pub notices: Vec<String>,
}

/// A workspace root as every frontend uses it: absolute, `.` and `..` resolved.
pub fn workspace_root(path: &Path) -> PathBuf {
    crate::tools::normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

impl Engine {
    /// Wires an engine: config → store → model client → gate → redactor →
    /// tools → engine. Never fails: a store that cannot open degrades (and
    /// says so in `notices`), a model that is not configured fails each turn
    /// with what to configure.
    pub fn assemble(mut config: Config, frontend: Frontend) -> Assembled {
        // Commands run under this binary's `tether supervise`.
        config.tools.supervisor = std::env::current_exe().ok();
        // …inside the OS sandbox when the kernel can build one.
        let unsandboxed = crate::sandbox::install(&mut config).map(|n| format!("Tether: {n}"));
        let store = frontend
            .store
            .unwrap_or_else(|| Store::open(&config.data_dir));
        let notices = [unsandboxed, store.take_notice(), store.take_warning()]
            .into_iter()
            .flatten()
            .collect();
        let model = ModelClient::from_config(&config);
        if let Err(e) = &model {
            tracing::info!("model not configured yet: {e}");
        }
        let gate = Gate::new(
            config.approval.clone(),
            config.delegation.approvals,
            frontend.asker,
            store.clone(),
            vec![frontend.root.clone()],
        );
        let key = config.api_key.as_ref().map(|k| k.expose().to_string());
        let redactor = Redactor::from_env(
            &frontend.env,
            &key.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        // MCP servers start now, in the background: the first turn finds
        // them up instead of paying their start-up.
        let mcp = crate::mcp::McpManager::new(crate::mcp::Options::from_config(
            &config,
            frontend.root.clone(),
        ));
        mcp.start_background();
        let engine = Engine::new(EngineParts {
            config: Arc::new(config),
            store,
            model,
            gate,
            buffers: frontend.buffers,
            root: frontend.root,
            redactor: Arc::new(redactor),
            tool_sources: frontend.tool_sources,
            mcp,
        });
        Assembled { engine, notices }
    }
}
