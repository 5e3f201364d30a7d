//! Waiting for the process to be told to stop: Ctrl-C, or SIGTERM (systemd's stop) on Unix. Shared
//! by `dwell-edge run` and `dwell-cloud run`/`demo`.

/// Returns when the process gets SIGINT (Ctrl-C) or, on Unix, SIGTERM. If the SIGTERM handler
/// can't be installed, Ctrl-C alone still works.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
