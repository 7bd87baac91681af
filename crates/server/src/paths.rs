//! Which files the server may touch: the configured directories, the MCP
//! client's roots, or by default the user's home. Paths are canonicalized, so
//! `..` and symlinks cannot lead outside.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// A refused or unusable path, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub String);

#[derive(Debug)]
pub struct PathPolicy {
    configured: Vec<PathBuf>,
    client_roots: RwLock<Vec<PathBuf>>,
    home: Option<PathBuf>,
}

fn canonical_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter_map(|d| match std::fs::canonicalize(d) {
            Ok(c) if c.is_dir() => Some(c),
            _ => {
                tracing::warn!(dir = %d.display(), "allowed directory does not exist or is not a directory; ignored");
                None
            }
        })
        .collect()
}

impl PathPolicy {
    pub fn new(configured: &[PathBuf]) -> Self {
        PathPolicy {
            configured: canonical_dirs(configured),
            client_roots: RwLock::new(Vec::new()),
            home: directories::BaseDirs::new()
                .and_then(|b| std::fs::canonicalize(b.home_dir()).ok()),
        }
    }

    /// Replaces the directories the client offered (MCP roots).
    pub fn set_client_roots(&self, roots: Vec<PathBuf>) {
        let roots = canonical_dirs(&roots);
        tracing::info!(?roots, "client roots");
        *self.client_roots.write().unwrap_or_else(|p| p.into_inner()) = roots;
    }

    /// The directories in force now.
    pub fn allowed(&self) -> Vec<PathBuf> {
        let mut dirs = self.configured.clone();
        dirs.extend(
            self.client_roots
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        if dirs.is_empty() {
            dirs.extend(self.home.clone());
        }
        dirs
    }

    fn absolute(&self, raw: &str) -> Result<PathBuf, PathError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PathError(
                "the path is empty; give the path of a file".into(),
            ));
        }
        let path = if let Some(rest) = raw.strip_prefix("file://") {
            url::Url::parse(&format!("file://{rest}"))
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| PathError(format!("'{raw}' is not a valid file URL")))?
        } else if raw == "~" || raw.starts_with("~/") {
            let home = self.home.clone().ok_or_else(|| {
                PathError("the home directory is unknown; give an absolute path".into())
            })?;
            home.join(raw.trim_start_matches('~').trim_start_matches('/'))
        } else {
            PathBuf::from(raw)
        };
        Ok(std::path::absolute(&path).unwrap_or(path))
    }

    fn check_inside(&self, resolved: &Path, shown: &Path) -> Result<(), PathError> {
        let allowed = self.allowed();
        if allowed.iter().any(|root| resolved.starts_with(root)) {
            return Ok(());
        }
        let dir = shown.parent().unwrap_or(shown);
        let list = if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(PathError(format!(
            "{} is outside the directories this server may access ({list}); to allow it, start the server with --allow-dir {} (or set DATAFRAME_MCP_ALLOW_DIRS), or add that folder as a root in your MCP client",
            shown.display(),
            dir.display()
        )))
    }

    /// Resolves a path to read: it must exist and lie inside an allowed directory.
    pub fn check_read(&self, raw: &str) -> Result<PathBuf, PathError> {
        let path = self.absolute(raw)?;
        let resolved = std::fs::canonicalize(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PathError(format!(
                "file not found: {} (relative paths are resolved against {}); check the name, or call inspect_file on the directory's files",
                path.display(),
                std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
            )),
            std::io::ErrorKind::PermissionDenied => {
                PathError(format!("no permission to read {}", path.display()))
            }
            _ => PathError(format!("cannot open {}: {e}", path.display())),
        })?;
        self.check_inside(&resolved, &path)?;
        Ok(resolved)
    }

    /// Resolves a path to write: its directory must exist and lie inside an
    /// allowed directory; an existing target must be a file (a symlink is
    /// followed and checked too).
    pub fn check_write(&self, raw: &str) -> Result<PathBuf, PathError> {
        let path = self.absolute(raw)?;
        let name = path
            .file_name()
            .ok_or_else(|| PathError(format!("{} has no file name", path.display())))?;
        let parent = path.parent().unwrap_or(Path::new("/"));
        let parent = std::fs::canonicalize(parent).map_err(|_| {
            PathError(format!(
                "the directory {} does not exist; create it first or choose another path",
                parent.display()
            ))
        })?;
        let target = parent.join(name);
        let resolved = match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(&target)
                .map_err(|_| PathError(format!("{} is a dangling symlink", target.display())))?,
            Ok(meta) if meta.is_dir() => {
                return Err(PathError(format!(
                    "{} is a directory; give a file path such as {}/export.csv",
                    target.display(),
                    target.display()
                )));
            }
            _ => target.clone(),
        };
        self.check_inside(&parent, &path)?;
        self.check_inside(&resolved, &path)?;
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stay_inside() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.csv"), "x\n1\n").unwrap();
        std::fs::write(outside.path().join("secret.csv"), "x\n1\n").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.csv"),
            root.path().join("link.csv"),
        )
        .unwrap();
        let policy = PathPolicy::new(&[root.path().to_path_buf()]);

        assert!(
            policy
                .check_read(&root.path().join("a.csv").to_string_lossy())
                .is_ok()
        );
        let sneaky = root
            .path()
            .join("..")
            .join(outside.path().file_name().unwrap())
            .join("secret.csv");
        let err = policy.check_read(&sneaky.to_string_lossy()).unwrap_err();
        assert!(err.0.contains("--allow-dir"), "{err}");
        assert!(
            policy
                .check_read(&root.path().join("link.csv").to_string_lossy())
                .is_err()
        );
        let missing = policy
            .check_read(&root.path().join("nope.csv").to_string_lossy())
            .unwrap_err();
        assert!(missing.0.contains("not found"), "{missing}");
    }

    #[test]
    fn writes_stay_inside() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let policy = PathPolicy::new(&[root.path().to_path_buf()]);
        assert!(
            policy
                .check_write(&root.path().join("out.csv").to_string_lossy())
                .is_ok()
        );
        assert!(
            policy
                .check_write(&outside.path().join("out.csv").to_string_lossy())
                .is_err()
        );
        std::os::unix::fs::symlink(outside.path().join("x.csv"), root.path().join("evil.csv"))
            .unwrap();
        std::fs::write(outside.path().join("x.csv"), "").unwrap();
        assert!(
            policy
                .check_write(&root.path().join("evil.csv").to_string_lossy())
                .is_err()
        );
        assert!(
            policy
                .check_write(&root.path().join("no/such/dir.csv").to_string_lossy())
                .is_err()
        );
    }

    #[test]
    fn client_roots_extend_the_allowed_set() {
        let configured = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.csv"), "x\n").unwrap();
        let policy = PathPolicy::new(&[configured.path().to_path_buf()]);
        assert!(
            policy
                .check_read(&root.path().join("a.csv").to_string_lossy())
                .is_err()
        );
        policy.set_client_roots(vec![root.path().to_path_buf()]);
        assert!(
            policy
                .check_read(&root.path().join("a.csv").to_string_lossy())
                .is_ok()
        );
    }
}
