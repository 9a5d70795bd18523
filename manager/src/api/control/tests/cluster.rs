//! The cluster: lookup and join-token rotation.

use super::*;

#[tokio::test]
async fn t60_cluster_token_rotation_changes_only_the_chosen_token() {
    let (api, store) = api().await;
    let e = api
        .get_cluster(Request::new(GetClusterRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    seed(&store, vec![store::create(cluster())]).await;
    let before = api
        .get_cluster(Request::new(GetClusterRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    let by_name = api
        .get_cluster(Request::new(GetClusterRequest {
            cluster_id: "default".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(by_name, before);

    let e = api
        .update_cluster(Request::new(UpdateClusterRequest {
            rotate_worker_token: true,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("cluster_version is required"));

    let after = api
        .update_cluster(Request::new(UpdateClusterRequest {
            cluster_id: "c0f".into(),
            cluster_version: version(&before.meta),
            spec: None,
            rotate_worker_token: true,
            rotate_manager_token: false,
        }))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    let (old_t, new_t) = (
        before.join_tokens.unwrap(),
        after.join_tokens.clone().unwrap(),
    );
    assert_eq!(new_t.manager, old_t.manager);
    assert_ne!(new_t.worker, old_t.worker);
    let (prefix, secret) = new_t.worker.rsplit_once('-').unwrap();
    assert_eq!(prefix, TOKEN_DIGEST);
    assert_eq!(secret.len(), 25);
    assert_eq!(
        after.spec, before.spec,
        "no spec in the request keeps the spec"
    );
    assert_eq!(store.view().the_cluster().unwrap().as_ref(), &after);

    let again = api
        .update_cluster(Request::new(UpdateClusterRequest {
            cluster_version: version(&after.meta),
            rotate_manager_token: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap()
        .join_tokens
        .unwrap();
    assert_eq!(again.worker, new_t.worker);
    assert_ne!(again.manager, new_t.manager);
    assert!(again.manager.starts_with(&format!("{TOKEN_DIGEST}-")));
}
