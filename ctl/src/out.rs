//! Standard output that a closed pipe (`xdpvsadm -L -n | head -1`) ends
//! quietly, as it ends ipvsadm (killed by SIGPIPE: status 141), instead of
//! a panic.

use std::io::Write;

/// Writes `text` to standard output.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("xdpvsadm: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
