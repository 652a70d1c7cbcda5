//! systemd over D-Bus (org.freedesktop.systemd1), the way systemctl does it:
//! jobs are queued and waited for through `JobRemoved`, unit files are
//! enabled with `EnableUnitFiles`, followed by a daemon `Reload` when the
//! loaded unit is out of date.

use std::time::Duration;

use futures_util::StreamExt;
use zbus::{ObjectPath, OwnedObjectPath};

use super::systemd::{ServiceOp, Systemd, SystemdError, UnitState};

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<(String, String, String)>)>;
    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<(String, String, String)>>;
    fn reload(&self) -> zbus::Result<()>;
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn unit_file_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn need_daemon_reload(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
}

/// How long a start/stop/reload job may take before portico gives up waiting.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to the system bus's systemd.
pub struct DbusSystemd {
    rt: tokio::runtime::Runtime,
    conn: zbus::Connection,
}

fn bus_err<'a>(unit: &'a str, op: &'static str) -> impl FnOnce(zbus::Error) -> SystemdError + 'a {
    move |e| SystemdError::Bus {
        unit: unit.to_string(),
        op,
        message: e.to_string(),
    }
}

impl DbusSystemd {
    /// Connects to the system bus.
    pub fn connect() -> Result<Self, SystemdError> {
        let _t = crate::timing::step("systemd", "connect to the system bus");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SystemdError::Bus {
                unit: String::new(),
                op: "connect",
                message: e.to_string(),
            })?;
        let conn = rt
            .block_on(zbus::Connection::system())
            .map_err(bus_err("", "connect to the system bus"))?;
        Ok(DbusSystemd { rt, conn })
    }

    async fn manager(&self) -> zbus::Result<ManagerProxy<'_>> {
        ManagerProxy::new(&self.conn).await
    }

    /// Queues a job and waits for it to finish; its result must be "done".
    async fn job(&self, unit: &str, op: ServiceOp) -> Result<(), SystemdError> {
        let name = op.name();
        let m = self.manager().await.map_err(bus_err(unit, name))?;
        // Subscribe and listen before queueing, so the signal cannot be missed.
        // One subscription per connection; a second job on it is already subscribed.
        if let Err(e) = m.subscribe().await {
            if !e.to_string().contains("AlreadySubscribed") {
                return Err(bus_err(unit, name)(e));
            }
        }
        let mut removed = m.receive_job_removed().await.map_err(bus_err(unit, name))?;
        // Started from an out-of-date copy of its unit, it would run the
        // old definition (an old ExecStart, no KillMode=mixed).
        if matches!(op, ServiceOp::Start | ServiceOp::Restart)
            && self.needs_reload(unit).await.map_err(bus_err(unit, name))?
        {
            m.reload().await.map_err(bus_err(unit, name))?;
        }
        let call = match op {
            ServiceOp::Start => m.start_unit(unit, "replace").await,
            ServiceOp::Stop => m.stop_unit(unit, "replace").await,
            ServiceOp::Reload => m.reload_unit(unit, "replace").await,
            ServiceOp::Restart => m.restart_unit(unit, "replace").await,
            ServiceOp::Enable | ServiceOp::Disable | ServiceOp::Hup => {
                unreachable!("not a job")
            }
        };
        let job = call.map_err(bus_err(unit, name))?;
        let wait = async {
            while let Some(signal) = removed.next().await {
                let Ok(args) = signal.args() else { continue };
                if args.job().as_str() == job.as_str() {
                    return Some(args.result().to_string());
                }
            }
            None
        };
        match tokio::time::timeout(JOB_TIMEOUT, wait).await {
            Ok(Some(result)) if result == "done" => Ok(()),
            Ok(Some(result)) => Err(SystemdError::Job {
                unit: unit.into(),
                op: name,
                result,
            }),
            Ok(None) => Err(SystemdError::Job {
                unit: unit.into(),
                op: name,
                result: "signal stream ended".into(),
            }),
            Err(_) => Err(SystemdError::Job {
                unit: unit.into(),
                op: name,
                result: format!("no result after {}s", JOB_TIMEOUT.as_secs()),
            }),
        }
    }

    /// SIGHUP to the unit's main process only (the nginx master, which
    /// tells its workers); `KillUnit` returns once it is sent.
    async fn hup(&self, unit: &str) -> Result<(), SystemdError> {
        let op = ServiceOp::Hup.name();
        let m = self.manager().await.map_err(bus_err(unit, op))?;
        m.kill_unit(unit, "main", nix::sys::signal::Signal::SIGHUP as i32)
            .await
            .map_err(bus_err(unit, op))
    }

    async fn unit_files(&self, unit: &str, enable: bool) -> Result<(), SystemdError> {
        let op = if enable { "enable" } else { "disable" };
        let m = self.manager().await.map_err(bus_err(unit, op))?;
        if enable {
            m.enable_unit_files(&[unit], false, false)
                .await
                .map_err(bus_err(unit, op))?;
            // The links matter at the next boot, which reads them from disk;
            // the running manager needs a reload (100 ms and more) only
            // when the unit it has loaded is older than its file. A unit
            // it has not loaded, or only as not found, is read afresh.
            if !self.needs_reload(unit).await.map_err(bus_err(unit, op))? {
                return Ok(());
            }
        } else {
            m.disable_unit_files(&[unit], false)
                .await
                .map_err(bus_err(unit, op))?;
        }
        // What `systemctl enable` does after changing the links.
        m.reload().await.map_err(bus_err(unit, op))
    }

    /// The manager's copy of the unit is out of date: its file changed
    /// since it was loaded (`NeedDaemonReload`), or it is cached as not
    /// found or bad (older systemd keeps that until a reload).
    async fn needs_reload(&self, unit: &str) -> zbus::Result<bool> {
        let path = self.manager().await?.load_unit(unit).await?;
        let u = UnitProxy::builder(&self.conn).path(path).build().await?;
        Ok(u.need_daemon_reload().await? || u.load_state().await? != "loaded")
    }

    async fn unit_state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let m = self.manager().await.map_err(bus_err(unit, "status"))?;
        let path = m.load_unit(unit).await.map_err(bus_err(unit, "status"))?;
        let u = UnitProxy::builder(&self.conn)
            .path(path)
            .build()
            .await
            .map_err(bus_err(unit, "status"))?;
        Ok(UnitState {
            active: u.active_state().await.map_err(bus_err(unit, "status"))?,
            file: u.unit_file_state().await.map_err(bus_err(unit, "status"))?,
        })
    }
}

impl Systemd for DbusSystemd {
    fn run(&self, op: ServiceOp, unit: &str) -> Result<(), SystemdError> {
        let what = format!("{} {unit}", op.name());
        // Every call here changes the host (a start, a reload, an enable).
        super::failpoint::hit("systemd", &what);
        let _t = crate::timing::step("systemd", &what);
        match op {
            ServiceOp::Hup => self.rt.block_on(self.hup(unit)),
            ServiceOp::Enable => self.rt.block_on(self.unit_files(unit, true)),
            ServiceOp::Disable => self.rt.block_on(self.unit_files(unit, false)),
            _ => self.rt.block_on(self.job(unit, op)),
        }
    }

    fn state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let _t = crate::timing::step("systemd", &format!("state of {unit}"));
        self.rt.block_on(self.unit_state(unit))
    }
}
