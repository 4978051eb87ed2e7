//! Random fault schedules: the downloaded file equals the source, or the download fails; never a wrong file under
//! the final name.

use std::sync::OnceLock;
use std::time::Duration;

use crate::support::download::*;
use acs_recording::emulator::{Emulator, Fault};
use proptest::prelude::*;

struct World {
    runtime: tokio::runtime::Runtime,
    emulator: Emulator,
}

/// One runtime and emulator for every case, so cases stay cheap.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let emulator = runtime.block_on(Emulator::builder().chunk_limit(1 << 20).start()).unwrap();
        World { runtime, emulator }
    })
}

fn fault(size: u64) -> impl Strategy<Value = Fault> {
    let at = 0..=size.max(1);
    prop_oneof![
        at.clone().prop_map(Fault::DropAfter),
        at.prop_map(Fault::ShortBody),
        prop::sample::select(vec![500u16, 503, 429, 408])
            .prop_map(|status| Fault::Status { status, retry_after: None }),
        Just(Fault::ChangeObject),
        Just(Fault::IgnoreRange),
    ]
}

fn case() -> impl Strategy<Value = (usize, Vec<Fault>, u32)> {
    (0usize..200_000).prop_flat_map(|size| (Just(size), prop::collection::vec(fault(size as u64), 0..5), 1u32..6))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_download_under_random_faults_is_exact_or_fails((size, faults, attempts) in case()) {
        let world = world();
        let emulator = &world.emulator;
        let dir = tempfile::tempdir().unwrap();
        let id = format!("p-{size}-{}", faults.len());
        emulator.storage().put_document(&id, pattern(size, size as u64));
        emulator.storage().inject(&id, faults.clone());
        let policy = fast_retries().max_attempts(attempts).initial_backoff(Duration::from_millis(1));
        let result = world.runtime.block_on(
            downloader(emulator, dir.path()).retry_policy(policy).download(single(emulator, "prop", &id)),
        );
        let final_path = dir.path().join("prop").join(format!("0-{id}.wav"));
        let now = emulator.storage().document(&id).unwrap();
        match result {
            Ok(manifest) => {
                prop_assert_eq!(manifest.chunks[0].sha256, now.sha256);
                prop_assert_eq!(manifest.chunks[0].bytes, size as u64);
                prop_assert_eq!(sha256_file(&final_path), now.sha256);
            }
            Err(error) => {
                prop_assert!(!final_path.exists(), "a failed download left {final_path:?}: {error}");
                prop_assert!(error.is_retryable(), "{error}");
            }
        }
        emulator.storage().clear_faults(&id);
    }
}
