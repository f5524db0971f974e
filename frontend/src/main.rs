//! Updraft's web UI: a client-side-rendered Leptos app. The layout (header, navigation,
//! content) is the frame later views (DAGs, runs, grid, graph, logs) fill.

mod api;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;
use updraft_shared::api::{HealthInfoResponse, VersionInfo};

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let version = LocalResource::new(|| api::get::<VersionInfo>("/api/v2/version"));
    provide_context(version);
    view! {
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"Updraft"</a>
                <span class="spacer"></span>
                <span class="version" data-testid="header-version">
                    {move || match version.get() {
                        Some(Ok(v)) => format!("v{}", v.version),
                        Some(Err(_)) => "version unknown".to_string(),
                        None => String::new(),
                    }}
                </span>
            </header>
            <div class="layout">
                <nav class="sidebar" aria-label="Main">
                    <A href="/">"Overview"</A>
                    <div class="section">"Admin"</div>
                    <A href="/health">"Health"</A>
                </nav>
                <main class="content">
                    <Routes fallback=NotFound>
                        <Route path=path!("/") view=Overview />
                        <Route path=path!("/health") view=Health />
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

type VersionResource = LocalResource<Result<VersionInfo, String>>;

#[component]
fn Overview() -> impl IntoView {
    let version = expect_context::<VersionResource>();
    view! {
        <h1>"Overview"</h1>
        <div class="cards">
            <div class="card">
                <h2>"Server"</h2>
                {move || match version.get() {
                    None => view! { <p class="meta">"Loading…"</p> }.into_any(),
                    Some(Err(e)) => view! { <p class="error">{e}</p> }.into_any(),
                    Some(Ok(v)) => view! {
                        <dl class="facts">
                            <dt>"Version"</dt>
                            <dd data-testid="version">{v.version}</dd>
                            <dt>"Git"</dt>
                            <dd>{v.git_version.map(|g| g.chars().take(12).collect::<String>()).unwrap_or_else(|| "unknown".into())}</dd>
                        </dl>
                    }
                    .into_any(),
                }}
            </div>
        </div>
        <h1 style="margin-top:1.5rem">"Health"</h1>
        <HealthCards />
    }
}

#[component]
fn Health() -> impl IntoView {
    view! {
        <h1>"Health"</h1>
        <HealthCards />
    }
}

/// The components' health, refreshed every 10 seconds.
#[component]
fn HealthCards() -> impl IntoView {
    let (tick, set_tick) = signal(0u32);
    let handle = set_interval_with_handle(
        move || set_tick.update(|t| *t = t.wrapping_add(1)),
        std::time::Duration::from_secs(10),
    );
    on_cleanup(move || {
        if let Ok(h) = handle {
            h.clear();
        }
    });
    let health = LocalResource::new(move || {
        tick.track();
        api::get::<HealthInfoResponse>("/api/v2/monitor/health")
    });
    view! {
        {move || match health.get() {
            None => view! { <p class="meta">"Loading…"</p> }.into_any(),
            Some(Err(e)) => view! { <p class="error">"Health unavailable: " {e}</p> }.into_any(),
            Some(Ok(h)) => view! {
                <div class="cards" data-testid="health">
                    <StatusCard name="Metadata database" status=h.metadatabase.status heartbeat=None />
                    <StatusCard name="Scheduler" status=h.scheduler.status heartbeat=h.scheduler.latest_scheduler_heartbeat />
                    <StatusCard name="Triggerer" status=h.triggerer.status heartbeat=h.triggerer.latest_triggerer_heartbeat />
                    <StatusCard name="DAG processor" status=h.dag_processor.status heartbeat=h.dag_processor.latest_dag_processor_heartbeat />
                </div>
            }
            .into_any(),
        }}
    }
}

#[component]
fn StatusCard(
    name: &'static str,
    status: Option<String>,
    heartbeat: Option<String>,
) -> impl IntoView {
    let (label, class) = match status.as_deref() {
        Some("healthy") => ("healthy", "status healthy"),
        Some("unhealthy") => ("unhealthy", "status unhealthy"),
        Some(_) => ("unknown", "status unknown"),
        None => ("not running", "status unknown"),
    };
    view! {
        <div class="card">
            <h2>{name}</h2>
            <div class=class>{label}</div>
            <div class="meta">
                {match heartbeat {
                    Some(at) => format!("Last heartbeat {at}"),
                    None if label == "unhealthy" => "No heartbeat yet".to_string(),
                    None => String::new(),
                }}
            </div>
        </div>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <h1>"Page not found"</h1>
        <p>"There is nothing at this address. " <a href="/">"Back to the overview"</a></p>
    }
}
