//! Conversions between the engine's values and LSP's: errors for the
//! editor, and the workspace root from `initialize`.

use super::*;

impl Backend {
    pub(super) fn start_error(&self, e: StartError) -> RpcError {
        let code = match e {
            StartError::EmptyPrompt => ErrorCode::InvalidParams,
            _ => ErrorCode::ServerError(REQUEST_FAILED),
        };
        let err = RpcError {
            code,
            message: e.to_string().into(),
            data: None,
        };
        if let StartError::NoModel(msg) = &e {
            let client = self.client.clone();
            let msg = format!("Tether: {msg}");
            tokio::spawn(async move { client.show_message(MessageType::ERROR, msg).await });
            return shown(err);
        }
        err
    }
}

/// Marks an error the person was already shown, so it is not shown twice.
pub(super) fn shown(mut e: RpcError) -> RpcError {
    e.data = Some(json!({"shown": true}));
    e
}

pub(super) fn failed(message: String) -> RpcError {
    RpcError {
        code: ErrorCode::ServerError(REQUEST_FAILED),
        message: message.into(),
        data: None,
    }
}

/// The workspace root: first workspace folder, else `rootUri`, else
/// `rootPath`, else the server's working directory.
#[allow(deprecated)]
pub(super) fn workspace_root(p: &InitializeParams) -> PathBuf {
    let from_folders = p
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .and_then(|f| tools::uri_to_path(f.uri.as_str()));
    let from_uri = || {
        p.root_uri
            .as_ref()
            .and_then(|u| tools::uri_to_path(u.as_str()))
    };
    let from_path = || p.root_path.as_ref().map(PathBuf::from);
    from_folders
        .or_else(from_uri)
        .or_else(from_path)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"))
}
