//! Node paths: the one place where a path a guest or the control plane sends is
//! checked and made absolute.
//!
//! A valid path is `/` or `/` followed by `/`-separated names of the characters
//! `[A-Za-z0-9_@-]`, with no empty name and no trailing `/`. A path not starting with
//! `/` is relative to the caller's home, `/local/domain/<id>`. Watch paths may also be
//! the special names `@introduceDomain` and `@releaseDomain`.

use alloc::format;
use alloc::string::String;

use crate::abi::xenstore::{XsError, ABS_PATH_MAX, REL_PATH_MAX};
use crate::addr::DomId;

/// A checked, absolute path.
///
/// # Invariants
///
/// `self.0` is `/` or a `/`-separated sequence of non-empty names of valid
/// characters, starting with `/`, at most [`ABS_PATH_MAX`] bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Path(String);

impl Path {
    /// The root, `/`.
    pub fn root() -> Path {
        Path(String::from("/"))
    }

    /// `/local/domain/<id>`, the home of a domain's relative paths.
    pub fn home(dom: DomId) -> Path {
        Path(format!("/local/domain/{}", dom.0))
    }

    /// Checks `raw` (without its NUL) and makes it absolute against `home`. Returns
    /// the path and whether it was relative.
    pub fn parse(raw: &[u8], home: &Path) -> Result<(Path, bool), XsError> {
        let text = core::str::from_utf8(raw).map_err(|_| XsError::EINVAL)?;
        let relative = !text.starts_with('/');
        if relative && text.len() > REL_PATH_MAX {
            return Err(XsError::E2BIG);
        }
        let full = if relative {
            format!("{}/{}", home.0, text)
        } else {
            String::from(text)
        };
        if full.len() > ABS_PATH_MAX {
            return Err(XsError::E2BIG);
        }
        if !valid(&full) {
            return Err(XsError::EINVAL);
        }
        // INVARIANT: checked by `valid` and the length tests above.
        Ok((Path(full), relative))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent, `None` for the root.
    pub fn parent(&self) -> Option<Path> {
        if self.0 == "/" {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        // INVARIANT: a prefix ending before a separator of a valid path is valid.
        Some(Path(String::from(if cut == 0 {
            "/"
        } else {
            &self.0[..cut]
        })))
    }

    /// The last name (empty for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// `self/name`, if `name` is a valid single name and the result not too long.
    pub fn child(&self, name: &str) -> Option<Path> {
        let full = if self.0 == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.0)
        };
        (!name.contains('/') && full.len() <= ABS_PATH_MAX && valid(&full)).then_some(Path(full))
    }

    /// The prefix every descendant starts with (`/` for the root, else `self/`).
    pub fn descendant_prefix(&self) -> String {
        if self.0 == "/" {
            String::from("/")
        } else {
            format!("{}/", self.0)
        }
    }

    /// Whether `self` is `ancestor` or below it.
    pub fn is_within(&self, ancestor: &Path) -> bool {
        self == ancestor || self.0.starts_with(&ancestor.descendant_prefix())
    }

    /// The path as the owner of `home` would name it relatively (the text after
    /// `home/`), or the absolute path if it is not below `home`.
    pub fn relative_to(&self, home: &Path) -> &str {
        let prefix = home.descendant_prefix();
        self.0.strip_prefix(prefix.as_str()).unwrap_or(&self.0)
    }
}

/// What a watch is on.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum WatchPath {
    /// A node and its descendants.
    Node(Path),
    /// `@introduceDomain` or `@releaseDomain`.
    Special(&'static str),
}

impl WatchPath {
    /// Checks a watch path: a node path or one of the special names.
    pub fn parse(raw: &[u8], home: &Path) -> Result<(WatchPath, bool), XsError> {
        for special in ["@introduceDomain", "@releaseDomain"] {
            if raw == special.as_bytes() {
                return Ok((WatchPath::Special(special), false));
            }
        }
        Path::parse(raw, home).map(|(p, rel)| (WatchPath::Node(p), rel))
    }
}

fn valid(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'@'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> Path {
        Path::home(DomId(1))
    }

    #[test]
    fn relative_paths_live_under_the_home() {
        let (p, rel) = Path::parse(b"memory/target", &home()).unwrap();
        assert_eq!(p.as_str(), "/local/domain/1/memory/target");
        assert!(rel);
        assert_eq!(p.relative_to(&home()), "memory/target");
        let (p, rel) = Path::parse(b"/local", &home()).unwrap();
        assert_eq!((p.as_str(), rel), ("/local", false));
        assert_eq!(p.relative_to(&home()), "/local");
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            &b""[..],
            b"/a//b",
            b"/a/",
            b"a b",
            b"a/./b",
            b"\xff",
            b"a\0b",
            b"//",
        ] {
            assert_eq!(Path::parse(bad, &home()), Err(XsError::EINVAL), "{bad:?}");
        }
        let long = [b'a'; REL_PATH_MAX + 1];
        assert_eq!(Path::parse(&long, &home()), Err(XsError::E2BIG));
        let mut abs = alloc::vec![b'a'; ABS_PATH_MAX + 1];
        abs[0] = b'/';
        assert_eq!(Path::parse(&abs, &home()), Err(XsError::E2BIG));
    }

    #[test]
    fn parents_children_and_ancestry() {
        let (p, _) = Path::parse(b"/a/b-c/d_e", &home()).unwrap();
        assert_eq!(p.parent().unwrap().as_str(), "/a/b-c");
        assert_eq!(p.name(), "d_e");
        assert_eq!(Path::root().parent(), None);
        assert_eq!(
            Path::parse(b"/a", &home()).unwrap().0.parent(),
            Some(Path::root())
        );
        assert_eq!(Path::root().child("x").unwrap().as_str(), "/x");
        assert_eq!(Path::root().child("x/y"), None);
        let a = Path::parse(b"/a", &home()).unwrap().0;
        let ab = Path::parse(b"/ab", &home()).unwrap().0;
        assert!(p.is_within(&a));
        assert!(!ab.is_within(&a));
        assert!(a.is_within(&Path::root()));
    }

    #[test]
    fn special_watch_names() {
        assert_eq!(
            WatchPath::parse(b"@releaseDomain", &home()).unwrap().0,
            WatchPath::Special("@releaseDomain")
        );
        assert!(WatchPath::parse(b"@other", &home())
            .is_ok_and(|(w, _)| matches!(w, WatchPath::Node(_))));
    }
}
