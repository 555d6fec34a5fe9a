//! The simulator kit: a simulator written on it logs every request, hands out injected faults
//! in order and in its own shape, and counts only the writes it says changed something.

#![cfg(feature = "sim-server")]

use ops_core::sim::{Fault, Ledger, Request, ResponseTemplate, SimApi, SimServer, Simulator};

/// A counter API: `POST /count` adds one, `GET /count` reads it.
#[derive(Default)]
struct Counter {
    ledger: Ledger,
    value: u64,
}

impl SimApi for Counter {
    fn ledger(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    fn respond(&mut self, req: &Request) -> ResponseTemplate {
        match (req.method.as_str(), req.url.path()) {
            ("POST", "/count") => {
                self.value += 1;
                self.ledger.mutated();
                ResponseTemplate::new(201)
            }
            ("GET", "/count") => ResponseTemplate::new(200).set_body_string(self.value.to_string()),
            _ => ResponseTemplate::new(404),
        }
    }

    fn fault(&mut self, fault: Fault, _: &Request) -> ResponseTemplate {
        match fault {
            Fault::Status { status, .. } => {
                ResponseTemplate::new(status).set_body_string("counter says no")
            }
            Fault::Delay(d) => ResponseTemplate::new(200).set_delay(d),
            Fault::TruncatedJson => ResponseTemplate::new(200).set_body_string("{\"va"),
        }
    }
}

struct CounterSim(SimServer<Counter>);

impl Simulator for CounterSim {
    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        self.0.with_ledger(f)
    }
}

#[tokio::test]
async fn faults_come_first_in_the_apis_shape_and_only_real_writes_count() {
    let sim = CounterSim(SimServer::start(Counter::default()).await);
    let http = reqwest::Client::new();
    let url = format!("{}/count", sim.0.uri());
    sim.inject(
        Some("POST"),
        "/count",
        1,
        Fault::Status {
            status: 503,
            retry_after: None,
        },
    );

    let refused = http.post(&url).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.text().await.unwrap(), "counter says no");
    assert_eq!(sim.mutations(), 0, "a refused write changed nothing");

    let read = http.get(format!("{url}?fresh=1")).send().await.unwrap();
    assert_eq!(read.status(), 200, "the fault was for POST only");
    assert_eq!(http.post(&url).send().await.unwrap().status(), 201);
    assert_eq!(sim.mutations(), 1);
    assert_eq!(
        sim.requests(),
        ["POST /count", "GET /count?fresh=1", "POST /count"]
    );
    let reply = http.get(&url).send().await.unwrap();
    assert!(
        reply
            .headers()
            .contains_key(ops_core::http::record::SIMULATOR_HEADER),
        "replies are marked as a simulator's"
    );
    assert_eq!(reply.text().await.unwrap(), "1");
}
