//! `FILE_CHECK`: the number in a `track_file`, read each second (keepalived
//! re-reads it when it changes). With weight 0 a non-zero number fails the
//! check and 0 passes; otherwise the number times the weight is added to
//! the server's weight, a result below 0 failing, and with `dynamic` the
//! result is the server's weight.

use crate::conf::model::TrackFile;

pub fn check(file: &TrackFile, weight: i64, dynamic: bool, base: u32) -> Result<Option<u32>, String> {
    let text = std::fs::read_to_string(&file.path).map_err(|e| format!("FILE_CHECK {}: {e}", file.path))?;
    let v: i64 =
        text.trim().parse().map_err(|_| format!("FILE_CHECK {}: '{}' is not a number", file.path, text.trim()))?;
    if weight == 0 {
        return if v == 0 { Ok(None) } else { Err(format!("FILE_CHECK {}: {v}: failed.", file.path)) };
    }
    let w = i64::from(base).saturating_add(v.saturating_mul(weight));
    if w < 0 {
        return Err(format!("FILE_CHECK {}: {v} × {weight} takes the weight to {w}: failed.", file.path));
    }
    Ok(dynamic.then(|| w.min(i64::from(xdpvs_api::config::MAX_WEIGHT)) as u32))
}

/// `init_file`: the value written if the file is missing (or always, with
/// `overwrite`).
pub fn init(file: &TrackFile) {
    if let Some((v, overwrite)) = file.init {
        if overwrite || !std::path::Path::new(&file.path).exists() {
            if let Err(e) = std::fs::write(&file.path, format!("{v}\n")) {
                tracing::warn!("track_file {}: cannot initialise it: {e}", file.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_s_rule() {
        let p = std::env::temp_dir().join(format!("xdpvs-track-{}", std::process::id()));
        let f = TrackFile { path: p.display().to_string(), weight: 1, init: Some((0, false)) };
        let _ = std::fs::remove_file(&p);
        init(&f);
        assert_eq!(check(&f, 0, false, 1), Ok(None), "initialised to 0");
        std::fs::write(&p, "3\n").unwrap();
        assert!(check(&f, 0, false, 1).is_err(), "weight 0: non-zero fails");
        assert_eq!(check(&f, 10, true, 1), Ok(Some(31)));
        assert_eq!(check(&f, 10, false, 1), Ok(None));
        assert!(check(&f, -10, true, 1).is_err(), "1 - 30 < 0");
        std::fs::write(&p, "junk").unwrap();
        assert!(check(&f, 1, false, 1).unwrap_err().contains("not a number"));
        let _ = std::fs::remove_file(&p);
    }
}
