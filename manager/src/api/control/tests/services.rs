//! Services: create, get, update (versions, rollback), remove.

use super::*;

#[tokio::test]
async fn t10_create_then_get_by_id_name_and_prefix() {
    let (api, store) = api().await;
    let created = create(&api, "web").await;
    assert_eq!(created.id.len(), 25);
    assert_eq!(version(&created.meta), store.view().index);
    let meta = created.meta.unwrap();
    assert!(meta.created_at_ns > 0);
    assert_eq!(meta.created_at_ns, meta.updated_at_ns);

    for reference in [
        created.id.clone(),
        "web".into(),
        created.id[..6].to_string(),
    ] {
        let got = api
            .get_service(Request::new(GetServiceRequest {
                service_id: reference.clone(),
            }))
            .await
            .unwrap_or_else(|e| panic!("{reference}: {e}"))
            .into_inner()
            .service
            .unwrap();
        assert_eq!(got.id, created.id);
        assert_eq!(got.meta, Some(meta));
    }
    let missing = api
        .get_service(Request::new(GetServiceRequest {
            service_id: "nope".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn t11_duplicate_name_is_already_exists() {
    let (api, store) = api().await;
    create(&api, "web").await;
    let err = api
        .create_service(Request::new(CreateServiceRequest {
            spec: Some(good_spec("web")),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(err.message(), "a service named \"web\" already exists");
    assert_eq!(store.view().services().count(), 1);
}

#[tokio::test]
async fn t12_invalid_specs_leave_the_store_unchanged() {
    let (api, store) = api().await;
    let svc = create(&api, "web").await;
    seed(
        &store,
        vec![
            store::create(node(
                "n1",
                "worker-1",
                NodeRole::Worker,
                NodeState::NodeReady,
            )),
            store::create(cluster()),
        ],
    )
    .await;
    let index = store.view().index;

    let mut bad = good_spec("web2");
    bad.mode = None;
    let e = api
        .create_service(Request::new(CreateServiceRequest { spec: Some(bad) }))
        .await
        .unwrap_err();
    assert_eq!(
        (
            e.code(),
            e.message().starts_with("service mode is required")
        ),
        (Code::InvalidArgument, true)
    );
    let e = api
        .create_service(Request::new(CreateServiceRequest { spec: None }))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "spec is required")
    );

    let e = api
        .update_service(Request::new(update_req(
            &svc.id,
            version(&svc.meta),
            Some(scaled("web", 2_000_000)),
        )))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("more than the maximum of 1000000"),
        "{}",
        e.message()
    );

    let n1 = store.view().node("n1").unwrap().clone();
    let e = api
        .update_node(Request::new(UpdateNodeRequest {
            node_id: "worker-1".into(),
            node_version: version(&n1.meta),
            spec: Some(NodeSpec {
                availability: 42,
                ..Default::default()
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("unknown node availability 42"));

    let c = store.view().the_cluster().unwrap().clone();
    let e = api
        .update_cluster(Request::new(UpdateClusterRequest {
            cluster_id: String::new(),
            cluster_version: version(&c.meta),
            spec: Some(ClusterSpec {
                orchestration: Some(OrchestrationConfig {
                    task_history_retention_limit: -3,
                }),
                ..Default::default()
            }),
            rotate_worker_token: true,
            rotate_manager_token: false,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    assert_eq!(
        store.view().index,
        index,
        "a refused request must not write"
    );
    assert_eq!(
        store.view().the_cluster().unwrap(),
        &c,
        "no half-applied rotation"
    );
}

#[tokio::test]
async fn t20_update_requires_the_current_version() {
    let (api, store) = api().await;
    let svc = create(&api, "web").await;
    let v1 = version(&svc.meta);

    let e = api
        .update_service(Request::new(update_req("web", 0, Some(scaled("web", 5)))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("service_version is required"));

    let updated = api
        .update_service(Request::new(update_req("web", v1, Some(scaled("web", 5)))))
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    assert_eq!(replicas(updated.spec.as_ref().unwrap()), 5);
    assert_eq!(replicas(updated.previous_spec.as_ref().unwrap()), 3);
    let v2 = version(&updated.meta);
    assert!(v2 > v1);
    assert_eq!(store.view().service(&svc.id).unwrap().as_ref(), &updated);

    // A second writer that read v1 is refused, in Docker's words.
    let e = api
        .update_service(Request::new(update_req("web", v1, Some(scaled("web", 7)))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("update out of sequence: "),
        "{}",
        e.message()
    );
    assert!(
        e.message()
            .contains(&format!("you read version {v1}, it is now at {v2}"))
    );
    let stored = store.view().service(&svc.id).unwrap().clone();
    assert_eq!(replicas(stored.spec.as_ref().unwrap()), 5);
    assert_eq!(stored.meta, updated.meta);
}

#[tokio::test]
async fn t21_rollback_swaps_spec_and_previous_spec() {
    let (api, _store) = api().await;
    let svc = create(&api, "web").await;
    let updated = api
        .update_service(Request::new(update_req(
            &svc.id,
            version(&svc.meta),
            Some(scaled("web", 5)),
        )))
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    let rolled = api
        .update_service(Request::new(UpdateServiceRequest {
            rollback: true,
            // Docker sends the current spec along; it is ignored.
            ..update_req(&svc.id, version(&updated.meta), Some(scaled("web", 9)))
        }))
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    assert_eq!(replicas(rolled.spec.as_ref().unwrap()), 3);
    assert_eq!(replicas(rolled.previous_spec.as_ref().unwrap()), 5);
    assert_eq!(
        rolled.meta.unwrap().created_at_ns,
        svc.meta.unwrap().created_at_ns
    );
}

#[tokio::test]
async fn t22_rollback_without_previous_spec_is_failed_precondition() {
    let (api, store) = api().await;
    let svc = create(&api, "web").await;
    let index = store.view().index;
    let e = api
        .update_service(Request::new(UpdateServiceRequest {
            rollback: true,
            ..update_req("web", version(&svc.meta), None)
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        "service web has no previous spec to roll back to"
    );
    assert_eq!(store.view().index, index);
}

#[tokio::test]
async fn t23_rename_and_mode_change_are_unsupported() {
    let (api, _store) = api().await;
    let svc = create(&api, "web").await;
    let v = version(&svc.meta);
    let e = api
        .update_service(Request::new(update_req("web", v, Some(good_spec("api")))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(
        e.message()
            .starts_with("renaming services is not supported")
    );
    let mut global = good_spec("web");
    global.mode = Some(service_spec::Mode::Global(GlobalService {}));
    let e = api
        .update_service(Request::new(update_req("web", v, Some(global))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("changing the service mode"));
}

#[tokio::test]
async fn t30_remove_unknown_is_not_found() {
    let (api, _store) = api().await;
    let e = api
        .remove_service(Request::new(RemoveServiceRequest {
            service_id: "ghost".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::NotFound, "service \"ghost\" not found")
    );
    let e = api
        .remove_task(Request::new(RemoveTaskRequest {
            task_id: "t".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = api
        .remove_node(Request::new(RemoveNodeRequest {
            node_id: "n".into(),
            force: true,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn t31_create_list_and_remove_services() {
    let (api, store) = api().await;
    let a = create(&api, "a").await;
    let b = create(&api, "b").await;
    let listed = api
        .list_services(Request::new(ListServicesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .services;
    let mut ids = vec![a.id.clone(), b.id.clone()];
    ids.sort();
    assert_eq!(listed.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), ids);
    api.remove_service(Request::new(RemoveServiceRequest {
        service_id: "a".into(),
    }))
    .await
    .unwrap();
    assert!(store.view().service(&a.id).is_none());
    assert!(store.view().service(&b.id).is_some());
}

fn wasm_artifact_of(s: &Service) -> String {
    match s
        .spec
        .as_ref()
        .and_then(|s| s.task.as_ref())
        .and_then(|t| t.runtime.as_ref())
    {
        Some(task_spec::Runtime::Wasm(w)) => w.artifact.clone(),
        other => panic!("not a wasm service: {other:?}"),
    }
}

#[tokio::test]
async fn t40_artifacts_are_pinned_on_create_and_update() {
    let (api, _store) = api().await;
    let web = create(&api, "web").await;
    assert_eq!(wasm_artifact_of(&web), format!("hello:1.0@{HELLO_DIGEST}"));

    let mut spec = good_spec("web");
    if let Some(task_spec::Runtime::Wasm(w)) = spec.task.as_mut().and_then(|t| t.runtime.as_mut()) {
        w.artifact = "missing:2".into();
    }
    let e = api
        .update_service(Request::new(update_req(
            &web.id,
            version(&web.meta),
            Some(spec.clone()),
        )))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(
        e.message(),
        "artifact 'missing:2' not found: push it with `swarmctl artifact push FILE missing:2`"
    );
    spec.annotations.as_mut().unwrap().name = "other".into();
    let e = api
        .create_service(Request::new(CreateServiceRequest { spec: Some(spec) }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let updated = api
        .update_service(Request::new(update_req(
            &web.id,
            version(&web.meta),
            web.spec.clone(),
        )))
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    assert_eq!(
        wasm_artifact_of(&updated),
        format!("hello:1.0@{HELLO_DIGEST}"),
        "a pinned reference stays pinned"
    );
}
