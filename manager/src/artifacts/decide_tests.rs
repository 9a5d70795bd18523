//! Commit, removal and pinning decisions against a store whose writes apply at once.

use swarm_proto::*;

use super::*;
use crate::api::validate::tests::good_spec;
use crate::store::{Store, testing};

fn digest(n: u8) -> String {
    format!("sha256:{}", hex::encode([n; 32]))
}

/// Commits a push of `digest` as `name_tag`, as the push handler does.
async fn push(store: &Store, n: u8, name_tag: &str) -> Artifact {
    let d = digest(n);
    let actions = commit(
        &store.view(),
        &d,
        8,
        ArtifactKind::ArtifactModule,
        name_tag,
        1,
        || format!("id{n}"),
    );
    if !actions.is_empty() {
        store.write_atomic(actions).await.unwrap();
    }
    (**store.view().artifact_by_digest(&d).unwrap()).clone()
}

fn service_spec(name: &str, artifact: &str) -> ServiceSpec {
    let mut spec = good_spec(name);
    if let Some(Runtime::Wasm(w)) = spec.task.as_mut().and_then(|t| t.runtime.as_mut()) {
        w.artifact = artifact.into();
    }
    spec
}

#[tokio::test]
async fn names_move_between_digests_and_repushes_only_add_names() {
    let store = testing::store();
    let a = push(&store, 1, "hello:latest").await;
    assert_eq!(a.names, ["hello:latest"]);
    assert!(
        commit(
            &store.view(),
            &digest(1),
            8,
            ArtifactKind::ArtifactModule,
            "hello:latest",
            2,
            || unreachable!()
        )
        .is_empty(),
        "same push twice writes nothing"
    );
    let a = push(&store, 1, "hello:1.0").await;
    assert_eq!(a.names, ["hello:1.0", "hello:latest"]);
    assert_eq!(
        store.view().artifacts().count(),
        1,
        "one artifact per digest"
    );
    // New bytes under an existing name: the name moves.
    let b = push(&store, 2, "hello:latest").await;
    assert_eq!(b.names, ["hello:latest"]);
    let a = store.view().artifact_by_digest(&digest(1)).unwrap().clone();
    assert_eq!(a.names, ["hello:1.0"]);
}

#[tokio::test]
async fn lookups_by_name_digest_and_prefix() {
    let store = testing::store();
    push(&store, 0xab, "hello:latest").await;
    push(&store, 0xac, "other:2").await;
    let view = store.view();
    assert_eq!(view.find_artifact("hello").unwrap().digest, digest(0xab));
    assert_eq!(
        view.find_artifact(&digest(0xac)).unwrap().names,
        ["other:2"]
    );
    assert_eq!(view.find_artifact("abab").unwrap().digest, digest(0xab));
    let amb = view.find_artifact("id").unwrap_err().to_string();
    assert!(amb.contains("ambiguous"), "{amb}");
    let nf = view.find_artifact("nope:1").unwrap_err().to_string();
    assert_eq!(nf, "artifact \"nope:1\" not found");
}

#[tokio::test]
async fn pinning_resolves_names_and_checks_digests() {
    let store = testing::store();
    push(&store, 1, "hello:latest").await;
    let view = store.view();
    let pinned = format!("hello:latest@{}", digest(1));
    assert_eq!(pin(&view, "hello").unwrap(), pinned);
    assert_eq!(pin(&view, "hello:latest").unwrap(), pinned);
    assert_eq!(
        pin(&view, &pinned).unwrap(),
        pinned,
        "pinning is idempotent"
    );
    assert_eq!(pin(&view, &digest(1)).unwrap(), digest(1));
    assert_eq!(
        pin(&view, "registry.example.com/team/app:1").unwrap(),
        "registry.example.com/team/app:1",
        "registry references are pulled by the agent, as written"
    );
    let err = pin(&view, "hello:2").unwrap_err();
    assert_eq!(
        tonic::Status::from(err).message(),
        "artifact 'hello:2' not found: push it with `swarmctl artifact push FILE hello:2`"
    );
    let err = tonic::Status::from(pin(&view, &digest(9)).unwrap_err());
    assert_eq!(err.code(), tonic::Code::NotFound);
    let mut spec = service_spec("web", "hello");
    pin_spec(&view, &mut spec).unwrap();
    assert_eq!(wasm_artifact(Some(&spec)), Some(pinned.as_str()));
}

#[tokio::test]
async fn removal_untags_or_deletes_and_is_refused_while_in_use() {
    let store = testing::store();
    push(&store, 1, "hello:latest").await;
    push(&store, 1, "hello:1").await;
    let Removal::Untag(a) = removal(&store.view(), "hello:1", 2).unwrap() else {
        panic!("a name of an artifact with two names is only untagged");
    };
    assert_eq!(a.names, ["hello:latest"]);
    store.write_atomic(vec![store::update(a)]).await.unwrap();

    let mut service = Service {
        id: "s1".into(),
        spec: Some(service_spec("web", &format!("hello:latest@{}", digest(1)))),
        ..Default::default()
    };
    store
        .write_atomic(vec![store::create(service.clone())])
        .await
        .unwrap();
    let err = removal(&store.view(), "hello", 3).unwrap_err();
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(
        status
            .message()
            .starts_with("artifact hello:latest is in use by service web"),
        "{}",
        status.message()
    );

    // Still the rollback target after an update to other bytes.
    service = (**store.view().service("s1").unwrap()).clone();
    service.previous_spec = service.spec.take();
    service.spec = Some(service_spec("web", &digest(2)));
    store
        .write_atomic(vec![store::update(service)])
        .await
        .unwrap();
    assert!(removal(&store.view(), &digest(1), 4).is_err());

    store
        .write_atomic(vec![store::remove(Service {
            id: "s1".into(),
            ..Default::default()
        })])
        .await
        .unwrap();
    assert!(matches!(
        removal(&store.view(), "hello", 5).unwrap(),
        Removal::Delete(_)
    ));
}
