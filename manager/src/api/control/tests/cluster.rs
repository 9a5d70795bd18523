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
            ..Default::default()
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

#[tokio::test]
async fn t61_autolock_on_rotate_off_and_the_key_is_only_shown_by_get_unlock_key() {
    let (api, store) = api().await;
    seed(&store, vec![store::create(cluster())]).await;
    let stored = || store.view().the_cluster().unwrap().clone();
    let update = |spec_lock: Option<bool>, rotate: bool| {
        let c = stored();
        let mut spec = c.spec.clone().unwrap_or_default();
        if let Some(on) = spec_lock {
            spec.encryption = Some(EncryptionConfig {
                auto_lock_managers: on,
            });
        }
        UpdateClusterRequest {
            cluster_id: c.id.clone(),
            cluster_version: version(&c.meta),
            spec: Some(spec),
            rotate_unlock_key: rotate,
            ..Default::default()
        }
    };
    let unlock_key = || async {
        api.get_unlock_key(Request::new(GetUnlockKeyRequest {}))
            .await
            .map(|r| r.into_inner().unlock_key)
    };

    let e = unlock_key().await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = api
        .update_cluster(Request::new(update(None, true)))
        .await
        .unwrap_err();
    assert!(e.message().contains("not autolocked"), "{}", e.message());

    let shown = api
        .update_cluster(Request::new(update(Some(true), false)))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(shown.unlock_key, "", "UpdateCluster's answer is redacted");
    let first = unlock_key().await.unwrap();
    assert!(
        crate::keymanager::UnlockKey::parse(&first).is_ok(),
        "{first}"
    );
    assert_eq!(stored().unlock_key, first);

    api.update_cluster(Request::new(update(None, false)))
        .await
        .unwrap();
    assert_eq!(
        unlock_key().await.unwrap(),
        first,
        "other updates keep the key"
    );
    api.update_cluster(Request::new(update(None, true)))
        .await
        .unwrap();
    let second = unlock_key().await.unwrap();
    assert_ne!(second, first, "rotated");

    api.update_cluster(Request::new(update(Some(false), false)))
        .await
        .unwrap();
    assert_eq!(stored().unlock_key, "");
    assert_eq!(
        unlock_key().await.unwrap_err().code(),
        Code::FailedPrecondition
    );
}
