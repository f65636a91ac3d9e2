//! Tether: a coding agent that lives inside the editor, served over LSP.
//!
//! Layers, top to bottom (no arrow points back up):
//! - frontends: [`lsp`] (the language server), [`acp`] (Agent Client Protocol)
//!   and [`exec`] (headless, one turn);
//! - [`engine`]: sessions, turns, the tool scheduler, the cancellation tree;
//! - services: [`gate`] (approvals and policy), [`tools`], [`model`] (HTTP/SSE),
//!   [`store`] (SQLite, one writer), [`config`], [`mcp`] (MCP tool servers);
//! - [`protocol`]: Tether's wire types, shared by all of the above and the tests;
//! - [`term`]: text made safe for a person's screen (control characters shown);
//!   [`text`]: text cut to a size.
//!
//! See `ARCHITECTURE.md` for the invariants each module keeps.

pub mod acp;
pub mod check;
pub mod config;
pub mod doctor;
pub mod engine;
pub mod exec;
pub mod gate;
pub mod lsp;
pub mod mcp;
pub mod model;
pub mod protocol;
pub mod sandbox;
pub mod store;
pub mod term;
pub mod text;
pub mod tools;
