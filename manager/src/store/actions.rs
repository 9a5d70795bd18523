//! Constructors for store actions, so callers say `store::update(task)` and not a struct literal.

use swarm_proto::{
    Artifact, BlobChunk, Cluster, Node, Service, StoreAction, StoreActionKind, StoreObject, Task,
    TaskPatch, store_object::Object as O,
};

/// Anything that can be written to the store as a whole object.
pub trait IntoObject {
    /// Wraps the object for a [`StoreAction`].
    fn into_object(self) -> StoreObject;
}

macro_rules! into_object {
    ($($ty:ident),*) => {$(
        impl IntoObject for $ty {
            fn into_object(self) -> StoreObject {
                StoreObject { object: Some(O::$ty(self)) }
            }
        }
    )*};
}
into_object!(Node, Service, Task, Cluster, Artifact, BlobChunk);

fn action(kind: StoreActionKind, object: StoreObject) -> StoreAction {
    StoreAction {
        kind: kind as i32,
        object: Some(object),
        task_patch: None,
    }
}

/// Creates `obj`; conflicts if its id (or a service's name) is taken.
pub fn create(obj: impl IntoObject) -> StoreAction {
    action(StoreActionKind::StoreCreate, obj.into_object())
}

/// Replaces `obj`; conflicts unless `obj.meta.version` is the stored version.
pub fn update(obj: impl IntoObject) -> StoreAction {
    action(StoreActionKind::StoreUpdate, obj.into_object())
}

/// Removes the object with `obj`'s id and kind.
pub fn remove(obj: impl IntoObject) -> StoreAction {
    action(StoreActionKind::StoreRemove, obj.into_object())
}

/// Applies a forward-only field patch to a task (see [`TaskPatch`]).
pub fn patch_task(patch: TaskPatch) -> StoreAction {
    StoreAction {
        kind: StoreActionKind::StorePatchTask as i32,
        object: None,
        task_patch: Some(patch),
    }
}
