//! Value parsers: what Docker accepts, and the reasons given for what it does not.

use super::*;

#[test]
fn memory_units_are_binary_like_docker() {
    assert_eq!(memory_bytes("64MiB"), Ok(64 << 20));
    assert_eq!(memory_bytes("64m"), Ok(64 << 20));
    assert_eq!(memory_bytes("64mb"), Ok(64 << 20));
    assert_eq!(memory_bytes("64M"), Ok(64 << 20));
    assert_eq!(memory_bytes("1g"), Ok(1 << 30));
    assert_eq!(memory_bytes("1GiB"), Ok(1 << 30));
    assert_eq!(memory_bytes("2k"), Ok(2048));
    assert_eq!(memory_bytes("2kb"), Ok(2048));
    assert_eq!(memory_bytes("2KiB"), Ok(2048));
    assert_eq!(memory_bytes("512"), Ok(512));
    assert_eq!(memory_bytes("512b"), Ok(512));
    assert_eq!(memory_bytes("1.5g"), Ok(3 << 29));
    assert_eq!(memory_bytes("10 MB"), Ok(10 << 20));
    assert_eq!(memory_bytes("1t"), Ok(1 << 40));
    assert_eq!(memory_bytes("0"), Ok(0));
}

#[test]
fn memory_errors_name_the_problem() {
    assert!(
        memory_bytes("12XB")
            .unwrap_err()
            .starts_with("unknown unit \"XB\"")
    );
    assert!(
        memory_bytes("12mk")
            .unwrap_err()
            .starts_with("unknown unit \"mk\"")
    );
    assert!(memory_bytes("MiB").unwrap_err().contains("expected a size"));
    assert!(memory_bytes("").unwrap_err().contains("expected a size"));
    assert!(memory_bytes("1.2.3m").unwrap_err().contains("not a number"));
    assert!(memory_bytes("-1m").is_err());
}

#[test]
fn cpus_are_exact_nanos() {
    assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
    assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
    assert_eq!(nano_cpus("1.25"), Ok(1_250_000_000));
    assert_eq!(nano_cpus(".1"), Ok(100_000_000));
    assert_eq!(nano_cpus("0.000000001"), Ok(1));
    assert_eq!(nano_cpus("0.5000000000"), Ok(500_000_000));
    assert!(
        nano_cpus("0.0000000001")
            .unwrap_err()
            .contains("too precise")
    );
    assert!(nano_cpus("-1").unwrap_err().contains("number of CPUs"));
    assert!(nano_cpus("half").unwrap_err().contains("number of CPUs"));
    assert!(nano_cpus(".").is_err());
    assert!(
        nano_cpus("99999999999999999999")
            .unwrap_err()
            .contains("too large")
    );
}

#[test]
fn durations_follow_go_syntax() {
    assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(duration("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(duration("2h45m"), Ok(Duration::from_secs(9900)));
    assert_eq!(duration("10us"), Ok(Duration::from_micros(10)));
    assert_eq!(duration("7ns"), Ok(Duration::from_nanos(7)));
    assert_eq!(duration("0"), Ok(Duration::ZERO));
    assert_eq!(duration_ms("1m30s"), Ok(90_000));
    assert!(duration("5").unwrap_err().starts_with("missing unit"));
    assert!(
        duration("5x")
            .unwrap_err()
            .starts_with("unknown unit \"x\"")
    );
    assert!(
        duration("5d")
            .unwrap_err()
            .starts_with("unknown unit \"d\"")
    );
    assert!(duration("-5s").unwrap_err().contains("negative"));
    assert!(duration("").is_err());
    assert!(duration("s").is_err());
}

#[test]
fn durations_format_like_go() {
    assert_eq!(format_ms(0), "0s");
    assert_eq!(format_ms(500), "500ms");
    assert_eq!(format_ms(5000), "5s");
    assert_eq!(format_ms(1500), "1.5s");
    assert_eq!(format_ms(90_000), "1m30s");
    assert_eq!(format_ms(7_200_000), "2h0m0s");
}

#[test]
fn constraints_accept_the_scheduler_keys() {
    for ok in [
        "node.id==abc123",
        "node.hostname!=worker-1",
        "node.role==manager",
        "node.role == worker",
        "node.labels.region==eu-west",
        "engine.labels.os==linux",
        "Node.Labels.Zone==a",
    ] {
        assert_eq!(constraint(ok), Ok(()), "{ok}");
    }
}

#[test]
fn constraint_errors_say_what_is_wrong() {
    assert!(
        constraint("node.role=manager")
            .unwrap_err()
            .contains("KEY==VALUE")
    );
    assert!(
        constraint("node.name==x")
            .unwrap_err()
            .contains("unknown key \"node.name\"")
    );
    assert!(
        constraint("node.labels.==x")
            .unwrap_err()
            .contains("unknown key")
    );
    assert!(
        constraint("node.hostname==")
            .unwrap_err()
            .contains("missing value")
    );
    assert!(
        constraint("node.role==boss")
            .unwrap_err()
            .contains("\"manager\" or \"worker\"")
    );
    assert!(
        constraint("node.labels.a==b==c")
            .unwrap_err()
            .contains("value")
    );
    assert!(
        constraint("node.labels.a b==c")
            .unwrap_err()
            .contains("key")
    );
}

#[test]
fn mounts_accept_docker_spellings() {
    let want = Mount {
        source: "/data".into(),
        target: "/srv".into(),
        readonly: false,
    };
    assert_eq!(
        mount("type=bind,source=/data,target=/srv"),
        Ok(want.clone())
    );
    assert_eq!(mount("src=/data,dst=/srv"), Ok(want.clone()));
    assert_eq!(
        mount("type=bind,src=/data,destination=/srv"),
        Ok(want.clone())
    );
    let ro = Mount {
        readonly: true,
        ..want.clone()
    };
    assert_eq!(
        mount("type=bind,source=/data,target=/srv,readonly"),
        Ok(ro.clone())
    );
    assert_eq!(mount("source=/data,target=/srv,ro=true"), Ok(ro.clone()));
    assert_eq!(mount("source=/data,target=/srv,ro"), Ok(ro));
    assert_eq!(mount("source=/data,target=/srv,readonly=false"), Ok(want));
}

#[test]
fn mount_errors_say_what_is_wrong() {
    assert!(
        mount("type=volume,source=v,target=/srv")
            .unwrap_err()
            .contains("only type=bind")
    );
    assert!(mount("target=/srv").unwrap_err().contains("missing source"));
    assert!(
        mount("source=/data")
            .unwrap_err()
            .contains("missing target")
    );
    assert!(
        mount("source=data,target=/srv")
            .unwrap_err()
            .contains("absolute path on the node")
    );
    assert!(
        mount("source=/data,target=srv")
            .unwrap_err()
            .contains("absolute path")
    );
    assert!(
        mount("source=/data,target=/srv,ro=maybe")
            .unwrap_err()
            .contains("true or false")
    );
    assert!(
        mount("source=/data,target=/srv,bind-propagation=rshared")
            .unwrap_err()
            .contains("unknown key")
    );
}

#[test]
fn ports_short_and_long_syntax() {
    let p = |published, target| PortConfig {
        name: String::new(),
        protocol: "tcp".into(),
        target_port: target,
        published_port: published,
    };
    assert_eq!(port("8080:80"), Ok(p(8080, 80)));
    assert_eq!(port("8080:80/tcp"), Ok(p(8080, 80)));
    assert_eq!(port("80"), Ok(p(0, 80)));
    assert_eq!(port("published=8080,target=80"), Ok(p(8080, 80)));
    assert_eq!(port("target=80,protocol=tcp,mode=ingress"), Ok(p(0, 80)));
    assert!(port("8080:80/udp").unwrap_err().contains("only tcp"));
    assert!(port("8080:0").unwrap_err().contains("not a port number"));
    assert!(port("70000:80").unwrap_err().contains("not a port number"));
    assert!(
        port("1.2.3.4:8080:80")
            .unwrap_err()
            .contains("[PUBLISHED:]TARGET")
    );
    assert!(
        port("published=8080")
            .unwrap_err()
            .contains("missing target")
    );
    assert!(
        port("target=80,mode=host")
            .unwrap_err()
            .contains("only ingress")
    );
}

#[test]
fn labels_and_env() {
    assert_eq!(label("a=b"), Ok(("a".into(), "b".into())));
    assert_eq!(label("a=b=c"), Ok(("a".into(), "b=c".into())));
    assert_eq!(label("flag"), Ok(("flag".into(), String::new())));
    assert!(label("=x").is_err());
    let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
    assert_eq!(env("A=1", &lookup), Ok(Some("A=1".into())));
    assert_eq!(env("A=", &lookup), Ok(Some("A=".into())));
    assert_eq!(env("HOME", &lookup), Ok(Some("HOME=/root".into())));
    assert_eq!(env("UNSET", &lookup), Ok(None));
    assert!(env("=1", &lookup).is_err());
    assert_eq!(env_key("A=1"), "A");
    assert_eq!(env_key("A"), "A");
}

#[test]
fn shell_words_split_like_sh() {
    assert_eq!(
        shell_words("a b  c"),
        Ok(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(
        shell_words("--msg 'hello world'"),
        Ok(vec!["--msg".into(), "hello world".into()])
    );
    assert_eq!(
        shell_words(r#"say "a \"q\" b" x\ y"#),
        Ok(vec!["say".into(), "a \"q\" b".into(), "x y".into()])
    );
    assert_eq!(shell_words("''"), Ok(vec![String::new()]));
    assert_eq!(shell_words(""), Ok(vec![]));
    assert!(shell_words("'open").is_err());
}

#[test]
fn ulimits_follow_docker_syntax() {
    let u = ulimit("cpu=10").unwrap();
    assert_eq!((u.name.as_str(), u.soft, u.hard), ("cpu", 10, 10));
    let u = ulimit("nofile=1024:2048").unwrap();
    assert_eq!((u.soft, u.hard), (1024, 2048));
    assert_eq!(ulimit("cpu=-1").unwrap().hard, -1);
    assert!(
        ulimit("cpu")
            .unwrap_err()
            .contains("expected NAME=SOFT[:HARD]")
    );
    assert!(
        ulimit("cpus=1")
            .unwrap_err()
            .starts_with("unknown ulimit \"cpus\"")
    );
    assert!(
        ulimit("cpu=ten")
            .unwrap_err()
            .contains("\"ten\" is not a limit")
    );
    assert!(
        ulimit("cpu=5:2")
            .unwrap_err()
            .contains("above the hard limit 2")
    );
}
