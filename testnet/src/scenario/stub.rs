//! TEMPORARY: the API of `crate::linearizability` and `crate::timeline`
//! (branch `lin`), so this branch compiles until that lands. Removed on
//! merge.
#![allow(dead_code)]

pub mod linearizability {
    use std::collections::BTreeMap;

    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
    pub enum KvOp {
        Put { key: String, value: String },
        Get { key: String },
    }
    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
    pub enum KvOutcome {
        PutOk,
        GetOk(Option<String>),
        Unknown,
    }
    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
    pub struct Operation {
        pub client: usize,
        pub invoke_us: u64,
        pub complete_us: Option<u64>,
        pub op: KvOp,
        pub outcome: KvOutcome,
    }
    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
    pub enum Verdict {
        Linearizable,
        NotLinearizable(Violation),
        Inconclusive { key: String, reason: String },
    }
    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
    pub struct Violation {
        pub key: String,
        pub message: String,
        pub operations: Vec<usize>,
    }
    #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
    pub struct Checker;
    impl Checker {
        pub fn new() -> Checker {
            Checker
        }
        pub fn with_budget(_states: usize) -> Checker {
            Checker
        }
        pub fn check(&self, _history: &[Operation], _initial: &BTreeMap<String, String>) -> Verdict {
            Verdict::Inconclusive { key: String::new(), reason: "stub checker".into() }
        }
    }
}

pub mod timeline {
    pub struct Marker {
        pub at_s: f64,
        pub label: String,
    }
    pub struct Span {
        pub from_s: f64,
        pub to_s: f64,
        pub label: String,
    }
    pub fn render_svg(
        title: &str,
        _commits_s: &[f64],
        _bucket_s: f64,
        _duration_s: f64,
        _markers: &[Marker],
        _spans: &[Span],
    ) -> String {
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><text>{title}</text></svg>")
    }
    pub fn rates(_commits_s: &[f64], _bucket_s: f64, _duration_s: f64) -> Vec<(f64, f64)> {
        Vec::new()
    }
}
