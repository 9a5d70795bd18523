//! The compiled-artifact cache: compile once per digest (in memory, shared by all tasks),
//! load from disk in a new backend on the same state dir, never run a corrupted file.

use super::super::WasiStats;
use super::*;

fn cwasm_files(state: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for engine_dir in std::fs::read_dir(state.join("cache")).unwrap() {
        for f in std::fs::read_dir(engine_dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "cwasm") {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn t50_many_tasks_compile_once_and_a_new_backend_loads_from_disk() {
    let f = Fixture::new();
    let hello = f.add("hello", swarm_guests::HELLO);
    let mut controllers: Vec<_> = (0..5)
        .map(|i| f.controller(&task(&format!("t{i}"), &hello).build()))
        .collect();
    let prepares = controllers.iter_mut().map(|c| c.prepare());
    for r in within("prepare", futures::future::join_all(prepares)).await {
        r.unwrap();
    }
    assert_eq!(
        f.backend.stats(),
        WasiStats {
            compiles: 1,
            cache_loads: 0
        }
    );
    assert_eq!(cwasm_files(f.state.path()).len(), 1);

    tracing::info!("--- a second backend on the same state dir (an agent restart)");
    let again = Fixture::backend_on(f.state.path(), &f.artifacts);
    let exit = run_on(&again, &task("t9", &hello).build()).await.unwrap();
    assert_eq!(exit.code, 0);
    assert_eq!(
        again.stats(),
        WasiStats {
            compiles: 0,
            cache_loads: 1
        }
    );
    assert_eq!(f.lines("t9"), ["hello from swarm"]);
}

#[tokio::test]
async fn t51_a_corrupted_cache_file_is_recompiled_not_run() {
    let f = Fixture::new();
    let hello = f.add("hello", swarm_guests::HELLO);
    f.run(&task("t1", &hello).build()).await.unwrap();
    let [cwasm] = cwasm_files(f.state.path()).try_into().unwrap();

    tracing::info!("--- flip bytes in the middle of the compiled file");
    let mut bytes = std::fs::read(&cwasm).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xFF;
    }
    std::fs::write(&cwasm, &bytes).unwrap();

    let again = Fixture::backend_on(f.state.path(), &f.artifacts);
    let exit = run_on(&again, &task("t2", &hello).build()).await.unwrap();
    assert_eq!(exit.code, 0);
    assert_eq!(
        again.stats(),
        WasiStats {
            compiles: 1,
            cache_loads: 0
        }
    );
    assert_ne!(std::fs::read(&cwasm).unwrap(), bytes, "rewritten");

    tracing::info!("--- and the rewritten file loads again");
    let third = Fixture::backend_on(f.state.path(), &f.artifacts);
    let mut c = third.controller(&task("t3", &hello).build()).unwrap();
    within("prepare", c.prepare()).await.unwrap();
    assert_eq!(third.stats().cache_loads, 1);
}

#[tokio::test]
async fn t52_invalid_wasm_is_rejected_with_the_digest() {
    let f = Fixture::new();
    let bad = f.add_wat("bad", "(module (func (export \"_start\") (i32.add)))");
    let mut c = f.controller(&task("t1", &bad).build());
    let err = within("prepare", c.prepare()).await.unwrap_err();
    assert!(matches!(err, ExecError::InvalidTask(_)), "{err:?}");
    assert!(
        err.to_string().contains("is not valid WebAssembly"),
        "{err}"
    );
}
