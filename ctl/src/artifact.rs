//! `swarmctl artifact push|ls|inspect|rm`, and the automatic push of a local `.wasm` file
//! named as a service's ARTIFACT.

use std::io::Write;
use std::path::Path;

use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};
use swarm_proto::artifacts_client::ArtifactsClient;
use swarm_proto::{
    Artifact, ArtifactKind, GetArtifactRequest, ListArtifactsRequest, PushArtifactHeader,
    PushArtifactRequest, RemoveArtifactRequest, push_artifact_request::Msg,
};

use crate::client;
use crate::error::CtlError;
use crate::output::{InspectFormat, ListFormat, Table, ago, bytes, write_json};

/// Bytes per push message (well under gRPC's 4 MiB message limit).
const PUSH_CHUNK: usize = 256 * 1024;

/// `swarmctl artifact …`
#[derive(Subcommand, Debug)]
pub enum ArtifactCmd {
    /// Push a WebAssembly file to the artifact store (prints its digest)
    Push(PushArgs),
    /// List artifacts
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display artifacts (JSON)
    Inspect(InspectArgs),
    /// Remove artifacts (a NAME:TAG of an artifact with other names only untags it)
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The .wasm file (a component or a core module)
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Name and tag (the tag defaults to latest)
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Show full digests
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Artifacts: NAME[:TAG], sha256:DIGEST, or an id / digest prefix
    #[arg(required = true, value_name = "ARTIFACT")]
    pub artifacts: Vec<String>,
    /// Output format (JSON, the default)
    #[arg(long, value_enum)]
    pub format: Option<InspectFormat>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Artifacts: NAME[:TAG], sha256:DIGEST, or an id / digest prefix
    #[arg(required = true, value_name = "ARTIFACT")]
    pub artifacts: Vec<String>,
}

async fn connect(socket: &Path) -> Result<ArtifactsClient<client::Conn>, CtlError> {
    Ok(ArtifactsClient::new(client::channel(socket).await?))
}

/// Runs an `artifact` subcommand.
pub async fn run(cmd: ArtifactCmd, socket: &Path) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ArtifactCmd::Push(a) => {
            let artifact = push_file(socket, &a.file, &a.name).await?;
            writeln!(out, "{}", artifact.digest)?;
            Ok(())
        }
        ArtifactCmd::Ls(a) => {
            let artifacts = connect(socket)
                .await?
                .list(ListArtifactsRequest {})
                .await?
                .into_inner()
                .artifacts;
            if a.format == ListFormat::Json {
                return Ok(write_json(&mut out, &artifacts)?);
            }
            let now = swarm_proto::ext::now_ns();
            Ok(out.write_all(table(&artifacts, now, a.no_trunc).render().as_bytes())?)
        }
        ArtifactCmd::Inspect(a) => {
            let mut c = connect(socket).await?;
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for reference in a.artifacts {
                match c.get(GetArtifactRequest { reference }).await {
                    Ok(r) => found.push(r.into_inner()),
                    Err(e) => missing.push(CtlError::from(e).to_string()),
                }
            }
            write_json(&mut out, &found)?;
            failed_if_any(missing)
        }
        ArtifactCmd::Rm(a) => {
            let mut c = connect(socket).await?;
            let mut failed = Vec::new();
            for reference in a.artifacts {
                match c
                    .remove(RemoveArtifactRequest {
                        reference: reference.clone(),
                    })
                    .await
                {
                    Ok(_) => writeln!(out, "{reference}")?,
                    Err(e) => failed.push(CtlError::from(e).to_string()),
                }
            }
            failed_if_any(failed)
        }
    }
}

fn failed_if_any(errors: Vec<String>) -> Result<(), CtlError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CtlError::Failed(errors.join("\n")))
    }
}

/// The `artifact ls` table: one row per name (an artifact without names shows `<none>`).
pub fn table(artifacts: &[Artifact], now_ns: i64, no_trunc: bool) -> Table {
    let mut t = Table::new(&["NAME", "TAG", "DIGEST", "SIZE", "KIND", "CREATED"]);
    for a in artifacts {
        let hex = a.digest.strip_prefix("sha256:").unwrap_or(&a.digest);
        let digest = if no_trunc {
            a.digest.clone()
        } else {
            format!("sha256:{}", &hex[..hex.len().min(12)])
        };
        let kind = match ArtifactKind::try_from(a.kind) {
            Ok(ArtifactKind::ArtifactComponent) => "component",
            Ok(ArtifactKind::ArtifactModule) => "module",
            _ => "unknown",
        };
        let created = ago(now_ns, a.meta.map_or(0, |m| m.created_at_ns));
        let names: Vec<(&str, &str)> = if a.names.is_empty() {
            vec![("<none>", "<none>")]
        } else {
            a.names
                .iter()
                .map(|n| n.rsplit_once(':').unwrap_or((n, "")))
                .collect()
        };
        for (name, tag) in names {
            t.row(vec![
                name.to_owned(),
                tag.to_owned(),
                digest.clone(),
                bytes(i64::try_from(a.size).unwrap_or(i64::MAX)),
                kind.to_owned(),
                created.clone(),
            ]);
        }
    }
    t
}

/// Pushes `file` as `NAME[:TAG]`; returns the stored artifact.
pub async fn push_file(socket: &Path, file: &Path, name: &str) -> Result<Artifact, CtlError> {
    let data = tokio::fs::read(file)
        .await
        .map_err(|e| CtlError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let (name, tag) = name.rsplit_once(':').unwrap_or((name, ""));
    let header = PushArtifactHeader {
        name: name.to_owned(),
        tag: tag.to_owned(),
        size: data.len() as u64,
        digest: format!("sha256:{}", hex::encode(Sha256::digest(&data))),
    };
    let mut messages = vec![PushArtifactRequest {
        msg: Some(Msg::Header(header)),
    }];
    messages.extend(data.chunks(PUSH_CHUNK).map(|c| PushArtifactRequest {
        msg: Some(Msg::Data(c.to_vec())),
    }));
    let artifact = connect(socket)
        .await?
        .push(tokio_stream::iter(messages))
        .await?
        .into_inner();
    Ok(artifact)
}

/// A service's ARTIFACT that names a local file (ends in `.wasm`, or has a '/' and exists):
/// pushes it as `<file stem>:latest` and returns `sha256:<hex>` to run; any other
/// reference is returned unchanged.
pub async fn resolve_local(socket: &Path, reference: &str) -> Result<String, CtlError> {
    let path = Path::new(reference);
    let local = reference.ends_with(".wasm") || (reference.contains('/') && path.exists());
    if !local {
        return Ok(reference.to_owned());
    }
    if !path.is_file() {
        return Err(CtlError::Usage(format!(
            "{reference} looks like a local file but does not exist; give an existing .wasm \
             file, NAME[:TAG] or sha256:DIGEST"
        )));
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    let artifact = push_file(socket, path, &format!("{stem}:latest")).await?;
    eprintln!("pushed {reference} as {stem}:latest ({})", artifact.digest);
    Ok(artifact.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_table_has_one_row_per_name() {
        let a = Artifact {
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 2048,
            kind: ArtifactKind::ArtifactComponent as i32,
            names: vec!["hello:1".into(), "hello:latest".into()],
            ..Default::default()
        };
        let text = table(&[a], 0, false).render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[1].contains("hello") && lines[1].contains("sha256:abababababab "));
        assert!(
            lines[1].contains("2KiB") && lines[1].contains("component"),
            "{text}"
        );
    }
}
