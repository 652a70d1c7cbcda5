//! A webroot a service user owns, raced: while portico makes the challenge
//! directory and writes challenge answers into it, another thread swaps
//! `.well-known` (and `acme-challenge`) for symlinks to a directory outside
//! the root and back, as fast as it can. Every write is made relative to
//! directory handles opened with `O_NOFOLLOW`, so no file may appear
//! outside the root and nothing outside may change mode, however the
//! swaps fall.
#![cfg(feature = "system")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use portico::host::Root;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn swapping_webroot_directories_for_symlinks_never_reaches_outside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // What an attacker would aim at: a directory with its own mode, and a
    // file (a chmod through a link would make it 0755).
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = outside.join("shadow");
    std::fs::write(&victim, b"secret").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
    let webroot = root_dir.join("var/www/html");
    std::fs::create_dir_all(&webroot).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, webroot, outside) = (stop.clone(), webroot.clone(), outside.clone());
        std::thread::spawn(move || {
            let wk = webroot.join(".well-known");
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // A real directory moved away, a symlink put in its place,
                // then the other way round; the same one level down.
                let aside = webroot.join(".aside");
                let _ = std::fs::rename(&wk, &aside);
                let _ = std::os::unix::fs::symlink(&outside, &wk);
                std::hint::spin_loop();
                let _ = std::fs::remove_file(&wk);
                let _ = std::fs::rename(&aside, &wk);
                let ac = wk.join("acme-challenge");
                let aside2 = wk.join(".aside");
                if std::fs::rename(&ac, &aside2).is_ok() {
                    let _ = std::os::unix::fs::symlink(&outside, &ac);
                    let _ = std::fs::remove_file(&ac);
                    let _ = std::fs::rename(&aside2, &ac);
                }
                swaps += 1;
            }
            swaps
        })
    };

    let root = Root::new(&root_dir);
    let challenge_dir = Path::new("/var/www/html/.well-known/acme-challenge");
    let (mut made, mut refused) = (0, 0);
    for i in 0..3000 {
        let token = format!("token{i}");
        let file = challenge_dir.join(&token);
        let ok = root
            .create_dir_all(challenge_dir, 0o755)
            .and_then(|()| root.create_new(&file, b"key-authorization", 0o644));
        match ok {
            Ok(()) => {
                made += 1;
                let _ = root.remove(&file);
            }
            Err(_) => refused += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();

    let outside_now: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(outside_now, ["shadow"], "a file appeared outside the root");
    assert_eq!(mode(&outside), 0o700, "the outside directory changed mode");
    assert_eq!(mode(&victim), 0o640, "the outside file changed mode");
    assert_eq!(std::fs::read(&victim).unwrap(), b"secret");
    eprintln!("{swaps} swaps; {made} answers written inside, {refused} refused");
    assert!(
        made > 0,
        "nothing was ever written: the test proves nothing"
    );
    assert!(
        swaps > 100,
        "the swapper barely ran: the test proves nothing"
    );
}
