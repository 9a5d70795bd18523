//! serde helpers: show enum-typed fields (i32 in prost) by their proto names in JSON output.

use serde::Serializer;

macro_rules! enum_by_name {
    ($($fn_name:ident => $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Serializes an `i32` field as the name of a [`", stringify!($ty), "`] value.")]
            pub fn $fn_name<S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
                match <$ty>::try_from(*value) {
                    Ok(v) => s.serialize_str(v.as_str_name()),
                    Err(_) => s.serialize_i32(*value),
                }
            }
        )*
    };
}

enum_by_name! {
    task_state => crate::TaskState,
    node_role => crate::NodeRole,
    node_availability => crate::NodeAvailability,
    node_state => crate::NodeState,
    restart_condition => crate::RestartCondition,
    update_failure_action => crate::UpdateFailureAction,
    update_order => crate::UpdateOrder,
    artifact_kind => crate::ArtifactKind,
}
