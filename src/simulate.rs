//! The traffic generator: a small discrete-event simulation of a desk.
//!
//! Calls arrive per queue as Poisson processes; agents take the oldest
//! waiting call of the queues they serve; callers abandon after an
//! exponential patience; talk, hold and after-call work are log-normal;
//! agents take pauses with reasons; callers who waited long and gave up
//! ask for a callback; order calls lead to offers, order confirmations and
//! sales at a per-agent conversion rate, with some up- and downgrades and
//! a few cancellations. The same seed gives the same events: the RNG is
//! ChaCha8 and every tie is broken by a sequence number.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal};

use crate::event::{
    AgentStatus, AttemptResult, Body, ContactRef, Direction, Event, SaleKind, SaleLink, Tag, Text,
    TransferTarget,
};
use crate::money::{Money, Quantity};

/// Knobs of the simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub agents: usize,
    /// Target events per second of event time (sets the call arrival rate).
    pub rate: f64,
    pub seed: u64,
    pub site: Option<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            agents: 24,
            rate: 0.5,
            seed: 1,
            site: None,
        }
    }
}

/// Queues: name, team serving it, share of arrivals. `partner_orders`
/// is served by an outsourcer's team (the shipped config marks it).
const QUEUES: [(&str, &str, f64); 4] = [
    ("orders", "sales", 0.4),
    ("service", "service", 0.3),
    ("complaints", "service", 0.12),
    ("partner_orders", "partner", 0.18),
];
/// Agent `i` is in team `TEAMS[i % 3]`.
const TEAMS: [&str; 3] = ["sales", "service", "partner"];
/// Queues where contacts sell.
const SELLING: [&str; 2] = ["orders", "partner_orders"];
/// The first minutes of every hour since the simulation began bring `orders` a rush
/// of three times its calls: the sales team sells a lot while its
/// service level drops, which the guardrail shows (docs/goals.md).
const RUSH_MINUTES: i64 = 20;
const RUSH_FACTOR: f64 = 3.0;
/// Roughly how many events one inbound call produces.
const EVENTS_PER_CALL: f64 = 6.0;
/// Mean talk + hold + wrap of the unscaled model, in seconds.
const MEAN_HANDLE_S: f64 = 260.0;
const PAUSES: [(&str, f64); 4] = [
    ("break", 600.0),
    ("lunch", 1800.0),
    ("coaching", 900.0),
    ("backoffice", 420.0),
];
const FIRST_NAMES: [&str; 12] = [
    "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Katrin",
    "Lukas",
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Arrive(usize),
    Answer(u64, usize),
    Hold(u64),
    Resume(u64),
    EndCall(u64),
    EndWrap(u64),
    Abandon(u64),
    PauseEnd(usize),
    Sale(u64, usize, u64),
    CancelSale(u64),
    TaskWork(u64),
    Transfer(u64, usize),
    /// A QA evaluation of a handled call by its agent.
    Score(u64, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentPhase {
    Free,
    Busy,
    Paused,
}

struct SimAgent {
    id: Text,
    team: usize,
    phase: AgentPhase,
    conversion: f64,
    /// Share of the agent's sales later cancelled (one agent's is high:
    /// the demo's integrity signal).
    cancels: f64,
    /// The agent's mean QA score.
    quality: f64,
}

struct SimCall {
    queue: usize,
    agent: Option<usize>,
    customer: Text,
    offered_ms: i64,
    answered: bool,
}

struct SimTask {
    id: Text,
    kind: &'static str,
    customer: Option<Text>,
    attempts: u32,
    agent: usize,
}

/// The generator. Iterate it for events in time order.
pub struct Simulator {
    rng: ChaCha8Rng,
    opts: SimOptions,
    offset: FixedOffset,
    now_ms: i64,
    seq: u64,
    next_id: u64,
    agenda: BinaryHeap<Reverse<(i64, u64, Action)>>,
    out: VecDeque<Event>,
    agents: Vec<SimAgent>,
    calls: std::collections::HashMap<u64, SimCall>,
    waiting: [VecDeque<u64>; 4],
    tasks: std::collections::HashMap<u64, SimTask>,
    sales: Vec<Text>,
    started: bool,
    /// When the simulation began (the rush hours count from here).
    origin_ms: i64,
    /// Handle times are scaled by this so the offered load fits the
    /// agents (about 85 % occupancy at most), whatever --rate asks for.
    pace: f64,
}

fn ln(mean_s: f64, sigma: f64) -> LogNormal<f64> {
    // mean = exp(mu + sigma²/2)
    let mu = mean_s.ln() - sigma * sigma / 2.0;
    LogNormal::new(mu, sigma).unwrap_or_else(|_| LogNormal::new(0.0, 1.0).expect("valid"))
}

impl Simulator {
    pub fn new(opts: SimOptions, start_ms: i64) -> Simulator {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let agents = (0..opts.agents.max(1))
            .map(|i| SimAgent {
                id: Text::from(format!("agent-{:04}", i + 1)),
                team: i % TEAMS.len(),
                phase: AgentPhase::Free,
                conversion: rng.random_range(0.08..0.35),
                cancels: if i == 0 { 0.6 } else { 0.03 },
                quality: rng.random_range(70.0..95.0),
            })
            .collect();
        Simulator {
            rng,
            offset: Utc.fix(),
            now_ms: start_ms,
            seq: 0,
            next_id: 0,
            agenda: BinaryHeap::new(),
            out: VecDeque::new(),
            agents,
            calls: Default::default(),
            waiting: Default::default(),
            tasks: Default::default(),
            sales: Vec::new(),
            started: false,
            origin_ms: start_ms,
            pace: {
                let calls_per_s = opts.rate / EVENTS_PER_CALL;
                let erlangs = calls_per_s * MEAN_HANDLE_S;
                let capacity = 0.85 * opts.agents.max(1) as f64;
                (capacity / erlangs.max(1e-9)).min(1.0)
            },
            opts,
        }
    }

    fn at(&mut self, delay_s: f64, a: Action) {
        self.seq += 1;
        let t = self.now_ms + (delay_s.max(0.0) * 1000.0) as i64;
        self.agenda.push(Reverse((t, self.seq, a)));
    }

    fn emit(&mut self, body: Body) {
        self.next_id += 1;
        let ts: DateTime<FixedOffset> = Utc
            .timestamp_millis_opt(self.now_ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&self.offset);
        self.out.push_back(Event {
            id: Text::from(format!("sim-{}-{}", self.opts.seed, self.next_id)),
            ts,
            site: self.opts.site.as_deref().map(Text::from),
            body,
        });
    }

    fn call_id(n: u64) -> Text {
        Text::from(format!("call-{n}"))
    }

    fn start(&mut self) {
        self.started = true;
        for i in 0..self.agents.len() {
            let a = &self.agents[i];
            let team = TEAMS[a.team];
            let queues: Vec<Text> = QUEUES
                .iter()
                .filter(|q| q.1 == team)
                .map(|q| Text::from(q.0))
                .collect();
            let body = Body::AgentLogin {
                agent: a.id.clone(),
                name: Some(Text::from(format!(
                    "{} {}",
                    FIRST_NAMES[i % FIRST_NAMES.len()],
                    i + 1
                ))),
                team: Some(Text::from(team)),
                queues,
            };
            self.emit(body);
        }
        for q in 0..QUEUES.len() {
            self.schedule_arrival(q);
        }
    }

    fn arrival_rate(&self, q: usize) -> f64 {
        let since = (self.now_ms - self.origin_ms).div_euclid(60_000);
        let rush = q == 0 && since.rem_euclid(60) < RUSH_MINUTES;
        let factor = if rush { RUSH_FACTOR } else { 1.0 };
        (self.opts.rate / EVENTS_PER_CALL * QUEUES[q].2 * factor).max(1e-6)
    }

    fn schedule_arrival(&mut self, q: usize) {
        let gap = Exp::new(self.arrival_rate(q))
            .map(|d| d.sample(&mut self.rng))
            .unwrap_or(60.0);
        self.at(gap, Action::Arrive(q));
    }

    fn serves(&self, agent: usize, q: usize) -> bool {
        QUEUES[q].1 == TEAMS[self.agents[agent].team]
    }

    /// Gives a free agent the oldest waiting call they serve.
    fn dispatch(&mut self, agent: usize) {
        let mut best: Option<(i64, usize)> = None;
        for q in 0..QUEUES.len() {
            if !self.serves(agent, q) {
                continue;
            }
            if let Some(c) = self.waiting[q].front().and_then(|id| self.calls.get(id)) {
                if best.is_none_or(|(t, _)| c.offered_ms < t) {
                    best = Some((c.offered_ms, q));
                }
            }
        }
        if let Some((_, q)) = best {
            if let Some(call) = self.waiting[q].pop_front() {
                self.agents[agent].phase = AgentPhase::Busy;
                if let Some(c) = self.calls.get_mut(&call) {
                    c.agent = Some(agent);
                }
                let ring = self.rng.random_range(2.0..8.0);
                self.at(ring, Action::Answer(call, agent));
            }
        }
    }

    fn free_agent_for(&mut self, q: usize) -> Option<usize> {
        let n = self.agents.len();
        let start = self.rng.random_range(0..n);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&a| self.agents[a].phase == AgentPhase::Free && self.serves(a, q))
    }

    fn step(&mut self, action: Action) {
        match action {
            Action::Arrive(q) => {
                self.schedule_arrival(q);
                let n = self.seq;
                // The partner's site has customers of its own: the daemon
                // settles a customer's callbacks per site, the simulated
                // desk per customer.
                let prefix = if QUEUES[q].1 == "partner" {
                    "acme-cust"
                } else {
                    "cust"
                };
                let customer =
                    Text::from(format!("{prefix}-{}", self.rng.random_range(1..5000u32)));
                self.calls.insert(
                    n,
                    SimCall {
                        queue: q,
                        agent: None,
                        customer: customer.clone(),
                        offered_ms: self.now_ms,
                        answered: false,
                    },
                );
                self.emit(Body::CallOffered {
                    call: Self::call_id(n),
                    queue: Text::from(QUEUES[q].0),
                    direction: Direction::Inbound,
                    customer: Some(customer),
                });
                self.waiting[q].push_back(n);
                let patience = Exp::new(1.0 / 90.0)
                    .map(|d| d.sample(&mut self.rng))
                    .unwrap_or(90.0);
                self.at(patience, Action::Abandon(n));
                if let Some(a) = self.free_agent_for(q) {
                    self.dispatch(a);
                }
            }
            Action::Answer(call, agent) => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                c.answered = true;
                let q = c.queue;
                let customer = c.customer.clone();
                // The daemon closes every callback owed to a customer who
                // gets through; the simulated desk forgets them too.
                self.settle_customer(&customer);
                self.emit(Body::CallAnswered {
                    call: Self::call_id(call),
                    agent: self.agents[agent].id.clone(),
                    wait_ms: None,
                });
                let talk = ln(200.0 * self.pace, 0.6).sample(&mut self.rng);
                if q == 1 && self.rng.random_bool(0.04) {
                    self.at(talk * 0.5, Action::Transfer(call, 2));
                } else {
                    if self.rng.random_bool(0.25) {
                        // Hold starts at 30 % of the talk and ends by 80 %.
                        let hold = ln(40.0 * self.pace, 0.7)
                            .sample(&mut self.rng)
                            .min(talk * 0.5);
                        self.at(talk * 0.3, Action::Hold(call));
                        self.at(talk * 0.3 + hold, Action::Resume(call));
                    }
                    self.at(talk, Action::EndCall(call));
                }
            }
            Action::Hold(call) => {
                if self.calls.get(&call).is_some_and(|c| c.agent.is_some()) {
                    self.emit(Body::CallHold {
                        call: Self::call_id(call),
                    });
                }
            }
            Action::Resume(call) => {
                if self.calls.get(&call).is_some_and(|c| c.agent.is_some()) {
                    self.emit(Body::CallResume {
                        call: Self::call_id(call),
                    });
                }
            }
            Action::Transfer(call, to) => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                let Some(agent) = c.agent.take() else { return };
                c.queue = to;
                c.offered_ms = self.now_ms;
                c.answered = false;
                self.emit(Body::CallTransferred {
                    call: Self::call_id(call),
                    to: TransferTarget::Queue(Text::from(QUEUES[to].0)),
                });
                self.waiting[to].push_back(call);
                let patience = Exp::new(1.0 / 90.0)
                    .map(|d| d.sample(&mut self.rng))
                    .unwrap_or(90.0);
                self.at(patience, Action::Abandon(call));
                self.agents[agent].phase = AgentPhase::Free;
                self.dispatch(agent);
                if let Some(a) = self.free_agent_for(to) {
                    self.dispatch(a);
                }
            }
            Action::EndCall(call) => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                let Some(agent) = c.agent else { return };
                let (q, customer) = (c.queue, Some(c.customer.clone()));
                self.emit(Body::CallEnded {
                    call: Self::call_id(call),
                    talk_ms: None,
                    hold_ms: None,
                });
                let wrap = ln(50.0 * self.pace, 0.5).sample(&mut self.rng);
                self.at(wrap, Action::EndWrap(call));
                let sells = SELLING.contains(&QUEUES[q].0)
                    && self.rng.random_bool(self.agents[agent].conversion);
                if sells {
                    let when = self.rng.random_range(1.0..wrap.max(2.0));
                    self.at(when, Action::Sale(call, agent, 0));
                }
                // Wrap-up tags on selling queues (coaching, docs/quality.md).
                if SELLING.contains(&QUEUES[q].0) && (sells || self.rng.random_bool(0.3)) {
                    let mut tags = vec![Tag::BuyingSignal];
                    if sells || self.rng.random_bool(0.5) {
                        tags.push(Tag::OfferMade);
                    } else if self.rng.random_bool(0.5) {
                        tags.push(Tag::MissedOpportunity);
                    }
                    self.emit(Body::ContactTagged {
                        contact: ContactRef::Call(Self::call_id(call)),
                        agent: self.agents[agent].id.clone(),
                        tags,
                    });
                }
                if self.rng.random_bool(0.1) {
                    let later = self.rng.random_range(60.0..600.0) * self.pace;
                    self.at(later, Action::Score(call, agent));
                }
                if q == 0 && self.rng.random_bool(0.2) {
                    self.new_task("offer", q, agent, customer);
                } else if q == 2 && self.rng.random_bool(0.3) {
                    let kind = if self.rng.random_bool(0.5) {
                        "complaint"
                    } else {
                        "credit_note"
                    };
                    self.new_task(kind, q, agent, customer);
                }
            }
            Action::EndWrap(call) => {
                let Some(c) = self.calls.remove(&call) else {
                    return;
                };
                self.emit(Body::WrapEnded {
                    call: Self::call_id(call),
                    outcome: None,
                });
                if let Some(agent) = c.agent {
                    self.agents[agent].phase = AgentPhase::Free;
                    if self.rng.random_bool(0.015) {
                        let (reason, mean) = PAUSES[self.rng.random_range(0..PAUSES.len())];
                        self.agents[agent].phase = AgentPhase::Paused;
                        self.emit(Body::AgentState {
                            agent: self.agents[agent].id.clone(),
                            state: AgentStatus::Paused,
                            reason: Some(Text::from(reason)),
                        });
                        let d = ln(mean, 0.4).sample(&mut self.rng);
                        self.at(d, Action::PauseEnd(agent));
                    } else {
                        self.dispatch(agent);
                    }
                }
            }
            Action::PauseEnd(agent) => {
                self.agents[agent].phase = AgentPhase::Free;
                self.emit(Body::AgentState {
                    agent: self.agents[agent].id.clone(),
                    state: AgentStatus::Available,
                    reason: None,
                });
                self.dispatch(agent);
            }
            Action::Abandon(call) => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if c.answered || c.agent.is_some() {
                    return;
                }
                let (q, waited, customer) =
                    (c.queue, self.now_ms - c.offered_ms, c.customer.clone());
                self.calls.remove(&call);
                self.waiting[q].retain(|x| *x != call);
                self.emit(Body::CallAbandoned {
                    call: Self::call_id(call),
                });
                if waited > 60_000 && self.rng.random_bool(0.5) {
                    let agent = self.rng.random_range(0..self.agents.len());
                    self.new_task("callback", q, agent, Some(customer));
                }
            }
            Action::Sale(call, agent, task) => {
                let (kind, qty, price, prev) = self.sale_shape();
                let sale = Text::from(format!("sale-{}", self.sales.len() + 1));
                self.sales.push(sale.clone());
                let link = if task > 0 {
                    Some(SaleLink::Task(Text::from(format!("task-{task}"))))
                } else {
                    Some(SaleLink::Call(Self::call_id(call)))
                };
                let product =
                    ["pump", "valve", "sensor", "service-plan"][self.rng.random_range(0..4)];
                self.emit(Body::Sale {
                    sale: sale.clone(),
                    agent: self.agents[agent].id.clone(),
                    link,
                    kind,
                    product: Some(Text::from(product)),
                    quantity: Quantity::from_f64(qty).unwrap_or(Quantity::ONE),
                    unit_price: Money::from_units(price).unwrap_or_default(),
                    previous_value: Money::from_units(prev).unwrap_or_default(),
                    currency: None,
                });
                if self.rng.random_bool(self.agents[agent].cancels) {
                    let later = self.rng.random_range(300.0..3600.0);
                    let n = self.sales.len() as u64 - 1;
                    self.at(later, Action::CancelSale(n));
                }
                if task == 0 && self.rng.random_bool(0.5) {
                    let customer = self.calls.get(&call).map(|c| c.customer.clone());
                    self.new_task("order_confirmation", 0, agent, customer);
                }
            }
            Action::Score(call, agent) => {
                let a = &self.agents[agent];
                let score = Normal::new(a.quality, 8.0)
                    .map(|d| d.sample(&mut self.rng))
                    .unwrap_or(a.quality)
                    .clamp(0.0, 100.0)
                    .round();
                let evaluator = ["qa-lena", "qa-tom"][self.rng.random_range(0..2)];
                self.emit(Body::QaScored {
                    contact: ContactRef::Call(Self::call_id(call)),
                    agent: a.id.clone(),
                    evaluator: Text::from(evaluator),
                    form: Text::from("inbound-v1"),
                    score,
                    items: Vec::new(),
                });
            }
            Action::CancelSale(n) => {
                if let Some(sale) = self.sales.get(n as usize).cloned() {
                    self.emit(Body::SaleCancelled {
                        sale,
                        reason: Some(Text::from("customer_withdrew")),
                    });
                }
            }
            Action::TaskWork(n) => {
                let Some(t) = self.tasks.get_mut(&n) else {
                    return;
                };
                let agent = t.agent;
                let id = t.id.clone();
                if t.kind == "callback" {
                    t.attempts += 1;
                    let attempts = t.attempts;
                    let r = self.rng.random_range(0.0..1.0);
                    let result = if r < 0.6 {
                        AttemptResult::Reached
                    } else if r < 0.85 {
                        AttemptResult::NoAnswer
                    } else if r < 0.95 {
                        AttemptResult::Voicemail
                    } else {
                        AttemptResult::Busy
                    };
                    self.emit(Body::TaskAttempted {
                        task: id.clone(),
                        agent: self.agents[agent].id.clone(),
                        result,
                    });
                    if result == AttemptResult::Reached {
                        // Reaching the customer closes the callback (and
                        // any other owed to them) in the daemon too.
                        self.settle_callbacks_of(n);
                    } else if attempts >= 3 {
                        // The daemon gives it up as unreachable itself
                        // after `callback_max_attempts` (3 by default).
                        self.tasks.remove(&n);
                    } else {
                        let later = ln(1800.0, 0.5).sample(&mut self.rng);
                        self.at(later, Action::TaskWork(n));
                    }
                } else {
                    let kind = t.kind;
                    self.tasks.remove(&n);
                    self.emit(Body::TaskCompleted {
                        task: id,
                        agent: Some(self.agents[agent].id.clone()),
                        outcome: None,
                    });
                    if kind == "offer" && self.rng.random_bool(0.3) {
                        // The customer accepted the offer.
                        self.step(Action::Sale(0, agent, n));
                    }
                }
            }
        }
    }

    /// Forgets the open callbacks of a customer (all queues share a site).
    fn settle_customer(&mut self, customer: &Text) {
        self.tasks
            .retain(|_, t| t.kind != "callback" || t.customer.as_ref() != Some(customer));
    }

    /// A callback was reached: it and the customer's others are settled.
    fn settle_callbacks_of(&mut self, n: u64) {
        if let Some(t) = self.tasks.remove(&n) {
            if let Some(c) = t.customer {
                self.settle_customer(&c);
            }
        }
    }

    fn sale_shape(&mut self) -> (SaleKind, f64, f64, f64) {
        let r = self.rng.random_range(0.0..1.0);
        let kind = match r {
            x if x < 0.5 => SaleKind::New,
            x if x < 0.7 => SaleKind::Upsell,
            x if x < 0.85 => SaleKind::CrossSell,
            x if x < 0.93 => SaleKind::Upgrade,
            x if x < 0.97 => SaleKind::Downgrade,
            _ => SaleKind::Renewal,
        };
        let qty = self.rng.random_range(1..=5) as f64;
        let price = (self.rng.random_range(20.0..400.0f64) * 100.0).round() / 100.0;
        let prev = match kind {
            SaleKind::Upgrade => {
                (qty * price * self.rng.random_range(0.3..0.9) * 100.0).round() / 100.0
            }
            SaleKind::Downgrade => {
                (qty * price * self.rng.random_range(1.2..2.0) * 100.0).round() / 100.0
            }
            _ => 0.0,
        };
        (kind, qty, price, prev)
    }

    fn new_task(
        &mut self,
        kind: &'static str,
        queue: usize,
        agent: usize,
        customer: Option<Text>,
    ) -> u64 {
        self.seq += 1;
        let n = self.seq;
        let id = Text::from(format!("task-{n}"));
        self.emit(Body::TaskCreated {
            task: id.clone(),
            kind: Text::from(kind),
            queue: Some(Text::from(QUEUES[queue].0)),
            customer: customer.clone(),
            due: None,
            priority: None,
        });
        self.tasks.insert(
            n,
            SimTask {
                id,
                kind,
                customer: if kind == "callback" { customer } else { None },
                attempts: 0,
                agent,
            },
        );
        let mean = match kind {
            "callback" => 2400.0,
            "order_confirmation" => 1500.0,
            "offer" => 5400.0,
            _ => 14400.0,
        };
        let later = ln(mean, 0.8).sample(&mut self.rng);
        self.at(later, Action::TaskWork(n));
        n
    }

    /// Time of the next event, advancing the simulation as needed.
    pub fn peek_ms(&mut self) -> i64 {
        self.fill();
        self.out.front().map(|e| e.ts_ms()).unwrap_or(self.now_ms)
    }

    fn fill(&mut self) {
        if !self.started {
            self.start();
        }
        while self.out.is_empty() {
            let Some(Reverse((t, _, action))) = self.agenda.pop() else {
                return;
            };
            self.now_ms = self.now_ms.max(t);
            self.step(action);
        }
    }
}

impl Iterator for Simulator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.fill();
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_events() {
        let opts = SimOptions {
            agents: 10,
            rate: 2.0,
            seed: 7,
            site: None,
        };
        let a: Vec<String> = Simulator::new(opts.clone(), 1_700_000_000_000)
            .take(2000)
            .map(|e| crate::event::encode(&e))
            .collect();
        let b: Vec<String> = Simulator::new(opts, 1_700_000_000_000)
            .take(2000)
            .map(|e| crate::event::encode(&e))
            .collect();
        assert_eq!(a, b);
        let ts: Vec<i64> = a
            .iter()
            .map(|l| crate::event::decode(l.as_bytes()).expect("valid").ts_ms())
            .collect();
        assert!(
            ts.windows(2).all(|w| w[0] <= w[1]),
            "events come in time order"
        );
    }
}
