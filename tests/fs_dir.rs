//! Directories: `read_dir` over thousands of entries (and its cancel safety), `DirEntry`,
//! `create_dir` / `create_dir_all` / `DirBuilder`, `remove_dir`, `remove_dir_all` of a nested
//! tree, and their failures.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::pin::pin;

use common::{poll_once, run_in_temp_dir};
use coring::fs::{self, DirBuilder};

#[test]
fn read_dir_lists_three_thousand_entries() {
    run_in_temp_dir(60, |dir| async move {
        const FILES: usize = 3_000;
        let mut expected = BTreeSet::new();
        for i in 0..FILES {
            let name = format!("entry-{i:05}");
            std::fs::write(dir.join(&name), b"").unwrap();
            expected.insert(OsString::from(name));
        }
        for name in ["sub-a", "sub-b"] {
            std::fs::create_dir(dir.join(name)).unwrap();
            expected.insert(OsString::from(name));
        }
        std::os::unix::fs::symlink("entry-00000", dir.join("link")).unwrap();
        expected.insert(OsString::from("link"));

        let mut seen = BTreeSet::new();
        let (mut files, mut dirs, mut links) = (0, 0, 0);
        let mut entries = fs::read_dir(&dir).await.unwrap();
        while let Some(entry) = entries.next_entry().await.unwrap() {
            assert_eq!(entry.path(), dir.join(entry.file_name()));
            let file_type = entry.file_type().await.unwrap();
            if file_type.is_file() {
                files += 1;
            } else if file_type.is_dir() {
                dirs += 1;
            } else if file_type.is_symlink() {
                links += 1;
                // Entry metadata describes the link itself.
                assert!(entry.metadata().await.unwrap().is_symlink());
            }
            assert_eq!(
                entry.ino(),
                std::fs::symlink_metadata(entry.path()).unwrap().ino()
            );
            assert!(
                seen.insert(entry.file_name()),
                "{:?} twice",
                entry.file_name()
            );
        }
        assert_eq!(seen, expected);
        assert_eq!((files, dirs, links), (FILES, 2, 1));
        // Exhausted stays exhausted.
        assert!(entries.next_entry().await.unwrap().is_none());
        assert!(entries.next_entry().await.unwrap().is_none());

        // An empty directory.
        let mut empty = fs::read_dir(dir.join("sub-a")).await.unwrap();
        assert!(empty.next_entry().await.unwrap().is_none());
    });
}

#[test]
fn read_dir_is_a_stream() {
    use futures_util::{StreamExt, TryStreamExt};
    run_in_temp_dir(30, |dir| async move {
        // More than one batch from the blocking pool.
        let count = 3 * fs::READ_DIR_BATCH + 5;
        let expected: BTreeSet<OsString> = (0..count)
            .map(|i| {
                let name = format!("s-{i:04}");
                std::fs::write(dir.join(&name), b"").unwrap();
                OsString::from(name)
            })
            .collect();
        let names: BTreeSet<OsString> = fs::read_dir(&dir)
            .await
            .unwrap()
            .map_ok(|entry| entry.file_name())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(names, expected);

        // The stream ends, and stays ended.
        let mut entries = fs::read_dir(&dir).await.unwrap();
        let mut taken = 0;
        while let Some(entry) = entries.next().await {
            entry.unwrap();
            taken += 1;
        }
        assert_eq!(taken, count);
        assert!(entries.next().await.is_none());
        assert!(entries.next_entry().await.unwrap().is_none());
    });
}

#[test]
fn read_dir_next_entry_is_cancel_safe() {
    run_in_temp_dir(30, |dir| async move {
        let count = 3 * fs::READ_DIR_BATCH + 5;
        for i in 0..count {
            std::fs::write(dir.join(format!("{i}")), b"").unwrap();
        }
        let mut entries = fs::read_dir(&dir).await.unwrap();
        let mut seen = BTreeSet::new();
        loop {
            // Start a fetch, drop it, then ask again: nothing may be lost or repeated.
            {
                let mut next = pin!(entries.next_entry());
                if let std::task::Poll::Ready(entry) = poll_once(next.as_mut()) {
                    match entry.unwrap() {
                        Some(entry) => assert!(seen.insert(entry.file_name())),
                        None => break,
                    }
                    continue;
                }
            }
            match entries.next_entry().await.unwrap() {
                Some(entry) => assert!(seen.insert(entry.file_name())),
                None => break,
            }
        }
        assert_eq!(seen.len(), count);
    });
}

#[test]
fn read_dir_failures() {
    run_in_temp_dir(30, |dir| async move {
        assert_eq!(
            fs::read_dir(dir.join("missing")).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        std::fs::write(dir.join("file"), b"").unwrap();
        assert_eq!(
            fs::read_dir(dir.join("file")).await.unwrap_err().kind(),
            ErrorKind::NotADirectory
        );
    });
}

#[test]
fn create_dir_and_create_dir_all() {
    run_in_temp_dir(30, |dir| async move {
        let a = dir.join("a");
        fs::create_dir(&a).await.unwrap();
        assert!(fs::metadata(&a).await.unwrap().is_dir());
        assert_eq!(
            fs::create_dir(&a).await.unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            fs::create_dir(dir.join("x/y")).await.unwrap_err().kind(),
            ErrorKind::NotFound,
            "create_dir needs the parent"
        );

        let deep = dir.join("p/q/r/s/t");
        fs::create_dir_all(&deep).await.unwrap();
        assert!(fs::metadata(&deep).await.unwrap().is_dir());
        fs::create_dir_all(&deep).await.unwrap(); // already there
        fs::create_dir_all(dir.join("p/q/other")).await.unwrap(); // partly there
        assert!(fs::metadata(dir.join("p/q/other")).await.unwrap().is_dir());
        fs::create_dir_all(dir.join("p/./q/../q/r")).await.unwrap();

        // A file in the way.
        std::fs::write(dir.join("file"), b"").unwrap();
        assert_eq!(
            fs::create_dir_all(dir.join("file"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            fs::create_dir_all(dir.join("file/below"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotADirectory
        );

        // Concurrent create_dir_all of overlapping trees all succeed.
        let mut handles = Vec::new();
        for i in 0..8 {
            let path = dir.join(format!("c/d/e/{i}"));
            handles.push(coring::spawn(async move { fs::create_dir_all(path).await }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.join("c/d/e")).unwrap().count(), 8);

        // DirBuilder with a mode (the umask may only take bits away).
        DirBuilder::new()
            .mode(0o700)
            .create(dir.join("private"))
            .await
            .unwrap();
        let mode = fs::metadata(dir.join("private"))
            .await
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir.join("m/n"))
            .await
            .unwrap();
        let mode = std::fs::metadata(dir.join("m/n"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077 & !0o750, 0);
    });
}

#[test]
fn remove_dir_and_remove_dir_all() {
    run_in_temp_dir(60, |dir| async move {
        let empty = dir.join("empty");
        fs::create_dir(&empty).await.unwrap();
        fs::remove_dir(&empty).await.unwrap();
        assert!(!fs::try_exists(&empty).await.unwrap());
        assert_eq!(
            fs::remove_dir(&empty).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        std::fs::write(dir.join("file"), b"").unwrap();
        assert_eq!(
            fs::remove_dir(dir.join("file")).await.unwrap_err().kind(),
            ErrorKind::NotADirectory
        );

        // A nested tree: 4 levels, 5 subdirectories and 20 files per directory, plus links.
        let outside = dir.join("outside");
        fs::create_dir(&outside).await.unwrap();
        fs::write(outside.join("keep"), b"keep").await.unwrap();
        let tree = dir.join("tree");
        let mut level = vec![tree.clone()];
        let mut total = 0;
        for depth in 0..4 {
            let mut next = Vec::new();
            for d in &level {
                fs::create_dir_all(d).await.unwrap();
                for f in 0..20 {
                    fs::write(d.join(format!("f{f}")), b"data").await.unwrap();
                    total += 1;
                }
                if depth < 3 {
                    for s in 0..5 {
                        next.push(d.join(format!("d{s}")));
                    }
                }
            }
            level = next;
        }
        // Links inside the tree pointing out of it must be removed, not followed.
        fs::symlink(&outside, tree.join("d0/to-outside"))
            .await
            .unwrap();
        fs::symlink(outside.join("keep"), tree.join("d1/d1/keep-link"))
            .await
            .unwrap();
        assert!(total > 3000, "{total} files");

        // remove_dir on the non-empty tree fails and removes nothing.
        assert_eq!(
            fs::remove_dir(&tree).await.unwrap_err().kind(),
            ErrorKind::DirectoryNotEmpty
        );
        assert!(fs::try_exists(tree.join("d4/d4/d4/f19")).await.unwrap());

        fs::remove_dir_all(&tree).await.unwrap();
        assert!(!fs::try_exists(&tree).await.unwrap());
        assert_eq!(fs::read(outside.join("keep")).await.unwrap(), b"keep");
        assert_eq!(
            fs::remove_dir_all(&tree).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            fs::remove_dir_all(dir.join("file"))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotADirectory
        );
    });
}
