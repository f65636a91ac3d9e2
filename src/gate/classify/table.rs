//! The program table: one entry per program (or family of programs) saying
//! what it runs and what it destroys, so that a program's rule lives in one
//! place. A newcomer adding `zpool destroy` adds a [`Verb`] to `zpool`'s entry
//! (or a new [`Program`] to [`TABLE`]) and a corpus row; nothing else.
//!
//! An entry says:
//! - `runs`: where the program finds a command it runs (`nsenter … CMD`,
//!   `chrt PRIO CMD`, `cpulimit -l 50 -- CMD`): that command is judged like any
//!   other, as if the program were a wrapper;
//! - `script_opts`: options whose value is a shell command string (`flock -c`,
//!   `nix-shell --run`, `vim -c '!…'` via `custom`), judged as a script —
//!   bundled short options (`-xc CMD`) count;
//! - `verbs`: operand words (in order, `*` at an end matching any prefix or
//!   suffix) and options that make the call destroy, publish or change the
//!   system, with the class and the reason;
//! - `always`: a class every call gets (disk formatters);
//! - `custom`: a function for what a table cannot say (sed scripts, SQL text,
//!   docker mounts…).
//!
//! Programs not in the table and not judged elsewhere are "unknown": when such
//! a program is given a command to run (`-c 'curl … | sh'`, `--run STRING`,
//! `-- rm …`), the call asks ([`unknown`]).

use super::args::{base, is_opt, short, Names};
use super::paths;
use super::programs::{interp_lang, sql_check, SHELLS, SQL_CLIENTS};
use super::words::{self, Arg};
use super::wrappers::{wrap, Peel};
use super::{Class, Script};

use Class::{Ask, Forbidden, Safe};

/// One program's rule.
pub(super) struct Program {
    pub names: &'static [&'static str],
    /// Where a command to run is found.
    pub runs: Runs,
    /// Options taking a value (so the value is not an operand).
    pub values: &'static [&'static str],
    /// Options whose value is a shell command string.
    pub script_opts: &'static [&'static str],
    pub verbs: &'static [Verb],
    pub always: Option<(Class, &'static str)>,
    pub custom: Option<fn(&mut Script, &[Arg], &str)>,
}

/// Where a program finds the command it runs.
#[derive(Clone, Copy)]
pub(super) enum Runs {
    Nothing,
    /// The operands, after skipping `skip` of them, are a command's argv.
    Operands {
        skip: usize,
    },
    /// The words after `--` are a command's argv.
    AfterDashDash,
    /// The operands after `skip` of them, joined, are a shell script.
    Script {
        skip: usize,
    },
}

/// A call that destroys, publishes or changes the system.
pub(super) struct Verb {
    /// Operand words that must appear in this order (`*` matches any prefix
    /// or suffix; `""` matches nothing so an empty list means "any operands").
    pub words: &'static [&'static str],
    /// When not empty, one of these options must be present too (`--x` also
    /// matches `--x=...`; an entry with `=` matches exactly).
    pub with: &'static [&'static str],
    pub class: Class,
    pub what: &'static str,
}

const fn verb(
    words: &'static [&'static str],
    with: &'static [&'static str],
    class: Class,
    what: &'static str,
) -> Verb {
    Verb {
        words,
        with,
        class,
        what,
    }
}

const P: Program = Program {
    names: &[],
    runs: Runs::Nothing,
    values: &[],
    script_opts: &[],
    verbs: &[],
    always: None,
    custom: None,
};

const DELETES_CLOUD: &str = "deletes or stops cloud resources";
const PUBLISHES: &str = "publishes a package or image";
const DISK: &str = "overwrites or destroys a disk, pool or partition table";
const SYSTEM: &str = "changes system state (network, clock, users, file attributes)";
const CLUSTER: &str = "deletes or disrupts cluster resources";
const DB: &str = "destructive database command";

/// Every program with a table rule. Order does not matter; names are unique.
#[rustfmt::skip]
pub(super) const TABLE: &[Program] = &[
    // --- programs that run another command ---------------------------------
    Program {
        names: &["nsenter"],
        runs: Runs::Operands { skip: 0 },
        values: &[
            "-t", "--target", "-S", "--setuid", "-G", "--setgid", "-r", "--root", "-w", "--wd",
        ],
        always: Some((Ask, "runs a command in another process's namespaces")),
        ..P
    },
    Program {
        names: &["chrt"],
        runs: Runs::Operands { skip: 1 },
        values: &["-T", "--sched-runtime", "-P", "--sched-period", "-D", "--sched-deadline"],
        ..P
    },
    Program {
        names: &["prlimit"],
        runs: Runs::Operands { skip: 0 },
        values: &["-p", "--pid", "-o", "--output"],
        ..P
    },
    Program {
        names: &["numactl"],
        runs: Runs::Operands { skip: 0 },
        values: &[
            "-i", "--interleave", "-N", "--cpunodebind", "-C", "--physcpubind", "-m", "--membind",
            "-p", "--preferred",
        ],
        ..P
    },
    Program {
        names: &["fakeroot", "eatmydata", "trickle", "torsocks", "proxychains", "proxychains4", "tsocks", "catchsegv", "dbus-launch", "dbus-run-session", "faketime", "rr", "heaptrack", "sshpass", "with-contenv", "chpst", "nq", "tsp", "cgexec", "runcon", "setpriv", "firejail", "bwrap", "proot", "cpulimit", "daemonize", "entr", "retry", "direnv", "dotenv", "env-cmd", "cross-env"],
        runs: Runs::Operands { skip: 0 },
        values: &[
            "-i", "-s", "-l", "-d", "-u", "-g", "-t", "-p", "-f", "--limit", "--pid", "--exe",
            "--path", "--faked", "--unknown-is-real", "--profile", "--net", "--private",
            "--bind", "--ro-bind", "--dev-bind", "--chdir", "--setenv", "--unsetenv", "-b", "-r",
            "-w", "-e", "-c", "-o",
        ],
        ..P
    },
    Program {
        names: &["sg"],
        script_opts: &["-c"],
        runs: Runs::Operands { skip: 1 },
        ..P
    },
    Program {
        names: &["deno", "bun"],
        custom: Some(js_runtime),
        ..P
    },
    Program {
        names: &["flock"],
        script_opts: &["-c", "--command"],
        ..P
    },
    Program {
        names: &["nix-shell"],
        script_opts: &["--run", "--command"],
        ..P
    },
    Program {
        names: &["nix"],
        script_opts: &["-c", "--command"],
        verbs: &[
            verb(&["run"], &[], Ask, "runs a package fetched by nix"),
            verb(&["profile", "install"], &[], Ask, "installs a tool outside the project"),
            verb(&["store", "delete"], &[], Ask, "deletes from the nix store"),
            verb(&["store", "gc"], &[], Ask, "deletes from the nix store"),
        ],
        ..P
    },
    Program {
        names: &["parallel", "sem"],
        custom: Some(parallel),
        ..P
    },
    Program {
        names: &["tmux"],
        custom: Some(tmux),
        ..P
    },
    Program {
        names: &["screen"],
        runs: Runs::Operands { skip: 0 },
        values: &["-S", "-c", "-e", "-h", "-p", "-s", "-t", "-X", "-r", "-R", "-x", "-T", "-L", "-Logfile"],
        custom: Some(screen),
        ..P
    },
    Program {
        names: &["toybox"],
        runs: Runs::Operands { skip: 0 },
        ..P
    },
    Program {
        names: &["npx"],
        script_opts: &["-c", "--call"],
        custom: Some(npx),
        ..P
    },
    Program {
        names: &["bunx", "uvx", "pipx-run"],
        always: Some((Ask, "downloads and runs a package")),
        ..P
    },
    Program {
        names: &["pnpm", "yarn"],
        verbs: &[
            verb(&["dlx"], &[], Ask, "downloads and runs a package"),
            verb(&["publish"], &[], Ask, PUBLISHES),
            verb(&["npm", "publish"], &[], Ask, PUBLISHES),
            verb(&["config", "set", "*registry*"], &[], Ask, "changes the package registry"),
        ],
        custom: Some(node_pm),
        ..P
    },
    Program {
        names: &["npm"],
        verbs: &[
            verb(&["publish"], &[], Ask, PUBLISHES),
            verb(&["unpublish"], &[], Ask, "unpublishes a package"),
            verb(&["deprecate"], &[], Ask, PUBLISHES),
            verb(&["dist-tag", "add"], &[], Ask, PUBLISHES),
            verb(&["owner", "add"], &[], Ask, PUBLISHES),
            verb(&["owner", "rm"], &[], Ask, PUBLISHES),
            verb(&["access"], &[], Ask, PUBLISHES),
            verb(&["config", "set"], &[], Ask, "changes npm configuration"),
            verb(&["set"], &[], Ask, "changes npm configuration"),
            verb(&["exec"], &["--yes", "-y", "--package", "-p"], Ask, "downloads and runs a package"),
        ],
        script_opts: &["-c", "--call"],
        custom: Some(node_pm),
        ..P
    },
    Program {
        names: &["make", "gmake"],
        verbs: &[
            verb(&[], &["--eval", "-E"], Ask, "make evaluates makefile text given on the command line"),
            verb(&[], &["-f-", "--file=-", "--makefile=-"], Ask, "make reads a makefile from stdin"),
        ],
        custom: Some(make),
        ..P
    },
    Program {
        names: &["vim", "nvim", "vi", "gvim", "ex", "view", "vimdiff", "nvim-qt"],
        custom: Some(vim),
        ..P
    },
    Program {
        names: &["gdb", "lldb"],
        custom: Some(gdb),
        ..P
    },
    Program {
        names: &["expect", "tclsh", "wish", "jimsh"],
        custom: Some(tcl),
        ..P
    },
    Program {
        names: &["sed", "gsed"],
        custom: Some(sed),
        ..P
    },
    Program {
        names: &["hyperfine", "concurrently"],
        runs: Runs::Script { skip: 0 },
        values: &[
            "-w", "--warmup", "-r", "--runs", "-m", "--min-runs", "-M", "--max-runs", "-p",
            "--prepare", "-c", "--cleanup", "--export-json", "--export-markdown", "-n", "--names",
            "-c", "--prefix-colors", "--export-csv", "-S", "--shell",
        ],
        script_opts: &["-p", "--prepare", "-c", "--cleanup", "--setup", "-s"],
        ..P
    },
    Program {
        names: &["nodemon", "watchexec", "watchman-make"],
        script_opts: &["-x", "--exec", "-s", "--run", "--shell"],
        runs: Runs::AfterDashDash,
        ..P
    },
    Program {
        names: &["lxc", "incus", "distrobox", "toolbox", "schroot", "machinectl", "systemd-nspawn", "vagrant", "mosh", "pueue", "aws-vault", "op", "doppler", "infisical", "chamber", "dotenvx", "mise", "rtx", "asdf", "rbenv", "pyenv", "fnm", "volta", "conda", "mamba", "micromamba", "pixi", "devbox", "tox", "nox"],
        runs: Runs::AfterDashDash,
        script_opts: &["-c", "--command", "--run", "--exec"],
        verbs: &[
            verb(&["delete"], &[], Ask, "deletes a container, machine or environment"),
            verb(&["destroy"], &[], Ask, "deletes a container, machine or environment"),
        ],
        ..P
    },
    // --- disks, pools, partitions ------------------------------------------
    Program {
        names: &["mkntfs", "mkdosfs", "mkexfatfs", "mkudffs", "mkreiserfs", "mkjfs", "mke2fs", "mkfatfs", "mformat", "sg_format", "sg_sanitize"],
        always: Some((Forbidden, "creates a filesystem (formats a disk)")),
        ..P
    },
    Program {
        names: &["nvme"],
        verbs: &[
            verb(&["format"], &[], Forbidden, DISK),
            verb(&["sanitize"], &[], Forbidden, DISK),
            verb(&["write*"], &[], Forbidden, DISK),
            verb(&["delete-ns"], &[], Forbidden, DISK),
            verb(&["ns-rescan"], &[], Ask, SYSTEM),
        ],
        ..P
    },
    Program {
        names: &["ddrescue", "dcfldd", "dc3dd"],
        custom: Some(disk_copy),
        ..P
    },
    Program {
        names: &["badblocks"],
        verbs: &[
            verb(&[], &["-w"], Forbidden, DISK),
            verb(&[], &["-n"], Ask, DISK),
        ],
        custom: Some(bundled_badblocks),
        ..P
    },
    Program {
        names: &["hdparm"],
        verbs: &[
            verb(&[], &["--security-erase", "--security-erase-enhanced", "--trim-sector-ranges", "--trim-sector-ranges-stdin", "--write-sector", "--dco-restore", "--dco-setmax", "--make-bad-sector", "--fwdownload", "--security-set-pass"], Forbidden, DISK),
            verb(&[], &["-W", "-S", "-B", "-M", "-y", "-Y", "-Z", "--yes-i-know-what-i-am-doing"], Ask, SYSTEM),
        ],
        ..P
    },
    Program {
        names: &["zpool"],
        verbs: &[
            verb(&["destroy"], &[], Forbidden, DISK),
            verb(&["labelclear"], &[], Forbidden, DISK),
            verb(&["create"], &[], Ask, DISK),
            verb(&["remove"], &[], Ask, DISK),
            verb(&["detach"], &[], Ask, DISK),
            verb(&["offline"], &[], Ask, DISK),
            verb(&["export"], &[], Ask, DISK),
            verb(&["split"], &[], Ask, DISK),
        ],
        ..P
    },
    Program {
        names: &["zfs"],
        verbs: &[
            verb(&["destroy"], &[], Ask, DISK),
            verb(&["rollback"], &[], Ask, DISK),
            verb(&["rename"], &[], Ask, DISK),
        ],
        ..P
    },
    Program {
        names: &["btrfs"],
        verbs: &[
            verb(&["subvolume", "delete"], &[], Ask, DISK),
            verb(&["device", "delete"], &[], Ask, DISK),
            verb(&["device", "remove"], &[], Ask, DISK),
            verb(&["filesystem", "resize"], &[], Ask, DISK),
            verb(&["check"], &["--repair"], Ask, DISK),
            verb(&["rescue"], &[], Ask, DISK),
            verb(&["balance"], &[], Ask, DISK),
        ],
        ..P
    },
    Program {
        names: &["lvm", "lvremove", "vgremove", "pvremove", "lvreduce", "lvresize", "vgreduce", "pvcreate", "vgcreate", "lvcreate"],
        always: Some((Ask, DISK)),
        ..P
    },
    Program {
        names: &["sgdisk", "gdisk"],
        verbs: &[verb(&[], &["-Z", "--zap-all", "-z", "--zap", "-o", "--clear"], Forbidden, DISK)],
        always: Some((Ask, DISK)),
        ..P
    },
    Program {
        names: &["parted"],
        verbs: &[
            verb(&["mklabel"], &[], Forbidden, DISK),
            verb(&["mktable"], &[], Forbidden, DISK),
            verb(&["rm"], &[], Forbidden, DISK),
        ],
        always: Some((Ask, DISK)),
        ..P
    },
    Program {
        names: &["cryptsetup"],
        verbs: &[
            verb(&["luksFormat"], &[], Forbidden, DISK),
            verb(&["erase"], &[], Forbidden, DISK),
            verb(&["luksErase"], &[], Forbidden, DISK),
            verb(&["reencrypt"], &[], Ask, DISK),
        ],
        always: Some((Ask, "system administration command")),
        ..P
    },
    Program {
        names: &["flashrom", "dmsetup", "mdadm", "fdisk", "sfdisk", "cfdisk", "partprobe", "kpartx", "e2fsck", "xfs_repair", "tune2fs", "resize2fs", "debugfs"],
        custom: Some(disk_admin),
        ..P
    },
    // --- system state -------------------------------------------------------
    Program {
        names: &["chattr", "setfacl", "setcap", "adduser", "deluser", "addgroup", "delgroup", "gpasswd", "chage", "newusers", "vipw", "vigr", "chfn", "ifup", "ifdown", "ntpdate", "rdate", "brctl", "iwconfig", "networksetup", "scutil", "hwclock-set", "sntp", "nvram", "csrutil", "spctl", "launchctl", "update-alternatives", "ldconfig", "sysctl-w", "dscl", "pwconv", "grpconv", "pam-auth-update", "authconfig", "tzselect"],
        custom: Some(system_state),
        ..P
    },
    Program {
        names: &["ip"],
        custom: Some(ip),
        ..P
    },
    Program {
        names: &["ifconfig", "route", "iw", "ethtool", "tc", "arp"],
        custom: Some(net_admin),
        ..P
    },
    Program {
        names: &["nmcli"],
        verbs: &[
            verb(&["*", "modify"], &[], Ask, SYSTEM),
            verb(&["*", "mod"], &[], Ask, SYSTEM),
            verb(&["*", "m"], &[], Ask, SYSTEM),
            verb(&["*", "delete"], &[], Ask, SYSTEM),
            verb(&["*", "del"], &[], Ask, SYSTEM),
            verb(&["*", "down"], &[], Ask, SYSTEM),
            verb(&["*", "up"], &[], Ask, SYSTEM),
            verb(&["*", "add"], &[], Ask, SYSTEM),
            verb(&["*", "connect"], &[], Ask, SYSTEM),
            verb(&["*", "disconnect"], &[], Ask, SYSTEM),
            verb(&["radio", "*"], &[], Ask, SYSTEM),
            verb(&["networking", "off"], &[], Ask, SYSTEM),
            verb(&["general", "hostname"], &[], Ask, SYSTEM),
        ],
        ..P
    },
    Program {
        names: &["timedatectl"],
        verbs: &[verb(&["set-*"], &[], Ask, SYSTEM)],
        ..P
    },
    Program {
        names: &["hostnamectl", "resolvectl", "localectl"],
        verbs: &[
            verb(&["set-*"], &[], Ask, SYSTEM),
            verb(&["hostname"], &[], Ask, SYSTEM),
            verb(&["dns"], &[], Ask, SYSTEM),
            verb(&["domain"], &[], Ask, SYSTEM),
        ],
        ..P
    },
    Program {
        names: &["hwclock"],
        verbs: &[verb(
            &[],
            &["-w", "--systohc", "-s", "--hctosys", "--set", "--adjust", "-a", "--systz"],
            Ask,
            SYSTEM,
        )],
        ..P
    },
    Program {
        names: &["chronyc"],
        verbs: &[
            verb(&["settime"], &[], Ask, SYSTEM),
            verb(&["makestep"], &[], Ask, SYSTEM),
            verb(&["offline"], &[], Ask, SYSTEM),
        ],
        ..P
    },
    Program {
        names: &["date", "gdate"],
        custom: Some(date),
        ..P
    },
    // --- cloud, containers, clusters ---------------------------------------
    Program {
        names: &["aws"],
        custom: Some(aws),
        ..P
    },
    Program {
        names: &["gcloud"],
        verbs: &[
            verb(&["*", "delete"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "stop"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "reset"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "remove-iam-policy-binding"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "set-iam-policy"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "add-iam-policy-binding"], &[], Ask, "grants cloud permissions"),
            verb(&["*", "create-key"], &[], Ask, "creates cloud credentials"),
            verb(&["*", "keys", "create"], &[], Ask, "creates cloud credentials"),
            verb(&["storage", "rm"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "deploy"], &[], Ask, PUBLISHES),
        ],
        script_opts: &["--command"],
        ..P
    },
    Program {
        names: &["gsutil"],
        verbs: &[
            verb(&["rm"], &[], Ask, DELETES_CLOUD),
            verb(&["rb"], &[], Ask, DELETES_CLOUD),
            verb(&["rsync"], &["-d"], Ask, DELETES_CLOUD),
            verb(&["mv"], &[], Ask, DELETES_CLOUD),
            verb(&["iam", "ch"], &[], Ask, "grants cloud permissions"),
            verb(&["acl", "ch"], &[], Ask, "grants cloud permissions"),
        ],
        ..P
    },
    Program {
        names: &["az"],
        verbs: &[
            verb(&["*", "delete"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "purge"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "stop"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "deallocate"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "restart"], &[], Ask, DELETES_CLOUD),
            verb(&["role", "assignment", "create"], &[], Ask, "grants cloud permissions"),
            verb(&["vm", "run-command"], &[], Ask, "runs a command on a cloud machine"),
            verb(&["*", "deploy*"], &[], Ask, PUBLISHES),
        ],
        ..P
    },
    Program {
        names: &["doctl", "linode-cli", "hcloud", "flyctl", "fly", "vercel", "netlify", "railway", "wrangler", "firebase", "supabase", "s3cmd", "rclone", "mc", "oci", "ibmcloud", "scw", "exoscale", "vultr-cli"],
        verbs: &[
            verb(&["*delete*"], &[], Ask, DELETES_CLOUD),
            verb(&["*destroy*"], &[], Ask, DELETES_CLOUD),
            verb(&["rm"], &[], Ask, DELETES_CLOUD),
            verb(&["rb"], &[], Ask, DELETES_CLOUD),
            verb(&["del"], &[], Ask, DELETES_CLOUD),
            verb(&["purge"], &[], Ask, DELETES_CLOUD),
            verb(&["*remove*"], &[], Ask, DELETES_CLOUD),
            verb(&["*deploy*"], &[], Ask, PUBLISHES),
            verb(&["sync"], &[], Ask, "synchronises (and may delete) remote files"),
            verb(&["*", "--prod"], &[], Ask, PUBLISHES),
        ],
        custom: Some(prod_flag),
        ..P
    },
    Program {
        names: &["gh"],
        custom: Some(gh),
        ..P
    },
    Program {
        names: &["heroku"],
        verbs: &[
            verb(&["*destroy*"], &[], Ask, DELETES_CLOUD),
            verb(&["*reset*"], &[], Ask, DELETES_CLOUD),
            verb(&["*:remove*"], &[], Ask, DELETES_CLOUD),
            verb(&["*:delete*"], &[], Ask, DELETES_CLOUD),
            verb(&["*:unset*"], &[], Ask, DELETES_CLOUD),
            verb(&["*:kill*"], &[], Ask, DELETES_CLOUD),
            verb(&["*:stop*"], &[], Ask, DELETES_CLOUD),
            verb(&["run*"], &[], Ask, "runs a command on a cloud machine"),
            verb(&["*:rollback"], &[], Ask, DELETES_CLOUD),
        ],
        ..P
    },
    Program {
        names: &["terraform", "tofu", "terragrunt"],
        verbs: &[
            verb(&["destroy"], &[], Ask, DELETES_CLOUD),
            verb(&["apply"], &[], Ask, "changes cloud infrastructure"),
            verb(&["*"], &["-destroy", "--destroy"], Ask, DELETES_CLOUD),
            verb(&["state", "rm"], &[], Ask, DELETES_CLOUD),
            verb(&["state", "push"], &[], Ask, DELETES_CLOUD),
            verb(&["state", "mv"], &[], Ask, DELETES_CLOUD),
            verb(&["state", "replace-provider"], &[], Ask, DELETES_CLOUD),
            verb(&["force-unlock"], &[], Ask, DELETES_CLOUD),
            verb(&["taint"], &[], Ask, DELETES_CLOUD),
            verb(&["untaint"], &[], Ask, DELETES_CLOUD),
            verb(&["import"], &[], Ask, "changes cloud infrastructure state"),
            verb(&["workspace", "delete"], &[], Ask, DELETES_CLOUD),
            verb(&["run-all", "*"], &[], Ask, "changes cloud infrastructure"),
        ],
        ..P
    },
    Program {
        names: &["pulumi"],
        verbs: &[
            verb(&["destroy"], &[], Ask, DELETES_CLOUD),
            verb(&["down"], &[], Ask, DELETES_CLOUD),
            verb(&["up"], &[], Ask, "changes cloud infrastructure"),
            verb(&["update"], &[], Ask, "changes cloud infrastructure"),
            verb(&["stack", "rm"], &[], Ask, DELETES_CLOUD),
            verb(&["state", "delete"], &[], Ask, DELETES_CLOUD),
            verb(&["cancel"], &[], Ask, DELETES_CLOUD),
            verb(&["refresh"], &["--yes", "-y"], Ask, "changes cloud infrastructure state"),
            verb(&["import"], &[], Ask, "changes cloud infrastructure state"),
        ],
        ..P
    },
    Program {
        names: &["cdk", "sam", "serverless", "sls", "copilot", "eksctl", "kops", "ansible-playbook", "ansible"],
        verbs: &[
            verb(&["destroy"], &[], Ask, DELETES_CLOUD),
            verb(&["delete*"], &[], Ask, DELETES_CLOUD),
            verb(&["remove"], &[], Ask, DELETES_CLOUD),
            verb(&["deploy"], &[], Ask, PUBLISHES),
        ],
        custom: Some(ansible),
        ..P
    },
    Program {
        names: &["kubectl", "k", "oc", "kubecolor", "k3s", "microk8s.kubectl"],
        custom: Some(kubectl),
        ..P
    },
    Program {
        names: &["helm"],
        verbs: &[
            verb(&["uninstall"], &[], Ask, CLUSTER),
            verb(&["delete"], &[], Ask, CLUSTER),
            verb(&["del"], &[], Ask, CLUSTER),
            verb(&["rollback"], &[], Ask, CLUSTER),
            verb(&["push"], &[], Ask, PUBLISHES),
            verb(&["plugin", "install"], &[], Ask, "installs a tool outside the project"),
            verb(&["repo", "add"], &[], Ask, "adds a package repository"),
            verb(&["install"], &["--repo"], Ask, "installs a chart from a URL"),
            verb(&["upgrade"], &["--repo"], Ask, "installs a chart from a URL"),
            verb(&["install", "http*"], &[], Ask, "installs a chart from a URL"),
            verb(&["upgrade", "*", "http*"], &[], Ask, "installs a chart from a URL"),
            verb(&["install", "oci:*"], &[], Ask, "installs a chart from a URL"),
        ],
        ..P
    },
    Program {
        names: &["docker", "podman", "nerdctl", "finch"],
        custom: Some(docker),
        ..P
    },
    Program {
        names: &["docker-compose", "podman-compose"],
        custom: Some(compose),
        ..P
    },
    Program {
        names: &["crictl", "ctr"],
        verbs: &[
            verb(&["rm*"], &[], Ask, "deletes containers or images"),
            verb(&["*", "rm"], &[], Ask, "deletes containers or images"),
            verb(&["*", "delete"], &[], Ask, "deletes containers or images"),
            verb(&["stop*"], &[], Ask, "deletes containers or images"),
            verb(&["exec"], &[], Ask, "runs a command in a container"),
        ],
        ..P
    },
    Program {
        names: &["virsh", "vboxmanage", "VBoxManage", "multipass", "qm", "pct", "limactl", "colima", "minikube", "kind", "k3d"],
        verbs: &[
            verb(&["destroy"], &[], Ask, DELETES_CLOUD),
            verb(&["undefine"], &[], Ask, DELETES_CLOUD),
            verb(&["delete"], &[], Ask, DELETES_CLOUD),
            verb(&["*", "delete"], &[], Ask, DELETES_CLOUD),
            verb(&["unregistervm"], &[], Ask, DELETES_CLOUD),
            verb(&["purge"], &[], Ask, DELETES_CLOUD),
            verb(&["exec"], &[], Ask, "runs a command in a virtual machine"),
            verb(&["shell"], &[], Ask, "runs a command in a virtual machine"),
        ],
        ..P
    },
    // --- publishing ---------------------------------------------------------
    Program {
        names: &["cargo"],
        verbs: &[
            verb(&["publish"], &[], Ask, PUBLISHES),
            verb(&["yank"], &[], Ask, PUBLISHES),
            verb(&["owner"], &["--add", "-a", "--remove", "-r"], Ask, PUBLISHES),
            verb(&["login"], &[], Ask, "stores registry credentials"),
        ],
        ..P
    },
    Program {
        names: &["twine", "flit", "vsce", "ovsx", "goreleaser", "semantic-release", "lerna", "changeset", "np", "release-it"],
        verbs: &[
            verb(&["upload"], &[], Ask, PUBLISHES),
            verb(&["publish"], &[], Ask, PUBLISHES),
            verb(&["release"], &[], Ask, PUBLISHES),
            verb(&["version"], &[], Ask, PUBLISHES),
            verb(&["unpublish"], &[], Ask, PUBLISHES),
        ],
        ..P
    },
    Program {
        names: &["poetry", "hatch", "uv", "pdm", "rye", "maturin"],
        verbs: &[
            verb(&["publish"], &[], Ask, PUBLISHES),
            verb(&["upload"], &[], Ask, PUBLISHES),
            verb(&["config", "repositories*"], &[], Ask, "changes the package registry"),
            verb(&["config", "*pypi-token*"], &[], Ask, "stores registry credentials"),
            verb(&["source", "add"], &[], Ask, "changes the package registry"),
        ],
        ..P
    },
    Program {
        names: &["gem"],
        verbs: &[
            verb(&["push"], &[], Ask, PUBLISHES),
            verb(&["yank"], &[], Ask, PUBLISHES),
            verb(&["owner"], &[], Ask, PUBLISHES),
            verb(&["sources"], &["--add", "-a"], Ask, "changes the package registry"),
            verb(&["install"], &["--source", "-s"], Ask, "installs from another package registry"),
        ],
        ..P
    },
    Program {
        names: &["mvn", "mvnw", "gradle", "gradlew", "sbt", "lein", "dotnet", "nuget", "swift", "pod", "dart", "flutter", "mix", "hex", "rebar3", "cabal", "stack", "opam", "conan", "vcpkg", "composer"],
        verbs: &[
            verb(&["deploy"], &[], Ask, PUBLISHES),
            verb(&["publish*"], &[], Ask, PUBLISHES),
            verb(&["*:deploy"], &[], Ask, PUBLISHES),
            verb(&["release:perform"], &[], Ask, PUBLISHES),
            verb(&["upload"], &[], Ask, PUBLISHES),
            verb(&["trunk", "push"], &[], Ask, PUBLISHES),
            verb(&["nuget", "push"], &[], Ask, PUBLISHES),
            verb(&["nuget", "delete"], &[], Ask, PUBLISHES),
            verb(&["push"], &[], Ask, PUBLISHES),
            verb(&["hex.publish"], &[], Ask, PUBLISHES),
            verb(&["global", "require"], &[], Ask, "installs a tool outside the project"),
            verb(&["tool", "install"], &["-g", "--global"], Ask, "installs a tool outside the project"),
            verb(&["pub", "global", "activate"], &[], Ask, "installs a tool outside the project"),
            verb(&["global", "activate"], &[], Ask, "installs a tool outside the project"),
            verb(&["install"], &["--global", "-g"], Ask, "installs a tool outside the project"),
            verb(&["config", "*repo*"], &[], Ask, "changes the package registry"),
        ],
        ..P
    },
    Program {
        names: &["skopeo", "crane", "buildah", "oras", "regctl", "cosign"],
        verbs: &[
            verb(&["push"], &[], Ask, PUBLISHES),
            verb(&["copy"], &[], Ask, PUBLISHES),
            verb(&["cp"], &[], Ask, PUBLISHES),
            verb(&["delete"], &[], Ask, "deletes images"),
            verb(&["rm*"], &[], Ask, "deletes images"),
            verb(&["sign"], &[], Ask, PUBLISHES),
        ],
        ..P
    },
    // --- databases ----------------------------------------------------------
    Program {
        names: &["dropdb", "dropuser", "pg_dropcluster", "pg_resetwal", "pg_resetxlog"],
        always: Some((Ask, DB)),
        ..P
    },
    Program {
        names: &["pg_restore"],
        verbs: &[verb(&[], &["-c", "--clean"], Ask, DB)],
        ..P
    },
    Program {
        names: &["mysqladmin", "mariadb-admin"],
        verbs: &[
            verb(&["drop"], &[], Ask, DB),
            verb(&["shutdown"], &[], Ask, DB),
            verb(&["kill"], &[], Ask, DB),
            verb(&["password"], &[], Ask, DB),
            verb(&["flush-*"], &[], Ask, DB),
        ],
        ..P
    },
    Program {
        names: &["redis-cli", "valkey-cli", "keydb-cli"],
        custom: Some(redis),
        ..P
    },
    Program {
        names: &["mongo", "mongosh"],
        custom: Some(mongo),
        ..P
    },
    Program {
        names: &["mongorestore"],
        verbs: &[verb(&[], &["--drop"], Ask, DB)],
        ..P
    },
    Program {
        names: &["influx", "cqlsh", "clickhouse", "usql", "litecli", "pgcli", "mycli", "sqlcmd", "isql", "bq", "snowsql"],
        custom: Some(other_sql),
        ..P
    },
    Program {
        names: &["createuser", "createdb"],
        verbs: &[verb(&[], &["-s", "--superuser"], Ask, DB)],
        ..P
    },
];

/// How many names the table holds.
const NAME_COUNT: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < TABLE.len() {
        n += TABLE[i].names.len();
        i += 1;
    }
    n
};

/// Byte-wise order of two names, usable at compile time.
const fn name_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return if a[i] < b[i] {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            };
        }
        i += 1;
    }
    if a.len() < b.len() {
        std::cmp::Ordering::Less
    } else if a.len() > b.len() {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// Every table name with its entry's index, sorted by name at compile time
/// (the order makes the hash table below the same on every build).
const BY_NAME: [(&str, usize); NAME_COUNT] = {
    let mut out = [("", 0usize); NAME_COUNT];
    let mut n = 0;
    let mut i = 0;
    while i < TABLE.len() {
        let mut j = 0;
        while j < TABLE[i].names.len() {
            // Insertion sort: shift larger names right.
            let name = TABLE[i].names[j];
            let mut k = n;
            while k > 0 && name_cmp(out[k - 1].0.as_bytes(), name.as_bytes()).is_gt() {
                out[k] = out[k - 1];
                k -= 1;
            }
            out[k] = (name, i);
            n += 1;
            j += 1;
        }
        i += 1;
    }
    out
};

/// FNV-1a of a name.
const fn name_hash(n: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < n.len() {
        h = (h ^ n[i] as u32).wrapping_mul(0x0100_0193);
        i += 1;
    }
    h as usize
}

/// Slots of [`SLOTS`] (a power of two, well above the number of names).
const SLOT_COUNT: usize = 4096;

/// An open-addressing hash table over [`BY_NAME`], computed at compile time:
/// a slot holds a name's index + 1, or 0 when empty. Most command names are
/// not in the table and end at an empty slot without a string comparison.
const SLOTS: [u16; SLOT_COUNT] = {
    assert!(NAME_COUNT < SLOT_COUNT / 2 && NAME_COUNT < u16::MAX as usize);
    let mut slots = [0u16; SLOT_COUNT];
    let mut i = 0;
    while i < NAME_COUNT {
        let mut h = name_hash(BY_NAME[i].0.as_bytes()) % SLOT_COUNT;
        while slots[h] != 0 {
            h = (h + 1) % SLOT_COUNT;
        }
        slots[h] = (i + 1) as u16;
        i += 1;
    }
    slots
};

/// The table entry for a program name, if any.
pub(super) fn find(name: &str) -> Option<&'static Program> {
    let mut h = name_hash(name.as_bytes()) % SLOT_COUNT;
    // Every probe ends at an empty slot: the table is at most half full.
    for _ in 0..SLOT_COUNT {
        let slot = usize::from(*SLOTS.get(h)?);
        let &(n, p) = BY_NAME.get(slot.checked_sub(1)?)?;
        if n == name {
            return TABLE.get(p);
        }
        h = (h + 1) % SLOT_COUNT;
    }
    None
}

/// Judges a program by its table entry.
pub(super) fn apply(s: &mut Script, p: &Program, args: &[Arg], snip: &str) {
    // `--help` prints and exits (clap, cobra, argparse, commander...).
    if args.iter().any(|a| a.is("--help")) && p.always.is_none_or(|(c, _)| c != Forbidden) {
        return;
    }
    if let Some((class, what)) = p.always {
        s.cx.hit(class, what, snip);
    }
    for cmd in opt_values(args, p.script_opts) {
        s.nested(&cmd, snip);
    }
    if let Runs::Script { skip } = p.runs {
        let ops = operands(args, p.values);
        for op in ops.iter().skip(skip) {
            s.nested(op, snip);
        }
    }
    let ops = operands(args, p.values);
    let dry = args.iter().any(|a| {
        matches!(
            a.text.as_str(),
            "--dry-run" | "--dryrun" | "--dry_run" | "--help"
        ) || a.text.starts_with("--dry-run=")
    });
    for v in p.verbs {
        if dry && v.class == Ask {
            continue;
        }
        if verb_matches(v, &ops, args) {
            s.cx.hit(v.class, v.what, snip);
        }
    }
    if let Some(f) = p.custom {
        f(s, args, snip);
    }
}

/// The command a table program runs, as a wrapper would hand it on.
/// The command a table program runs, as a wrapper would hand it on (with
/// the entry's `always` finding).
pub(super) fn peel(name: &str, args: &[Arg]) -> Option<Peel> {
    let p = find(name)?;
    let inner = match p.runs {
        Runs::Operands { skip } => {
            let mut i = 0;
            let mut skipped = 0;
            while let Some(a) = args.get(i) {
                let t = a.text.as_str();
                if t == "--" {
                    i += 1;
                    while skipped < skip && i < args.len() {
                        i += 1;
                        skipped += 1;
                    }
                    break;
                }
                if is_opt(t) {
                    i += if p.values.contains(&t) { 2 } else { 1 };
                    continue;
                }
                if skipped < skip {
                    skipped += 1;
                    i += 1;
                    continue;
                }
                break;
            }
            args.get(i..).unwrap_or(&[]).to_vec()
        }
        Runs::AfterDashDash => match args.iter().position(|a| a.is("--")) {
            Some(i) => args.get(i + 1..).unwrap_or(&[]).to_vec(),
            None => return None,
        },
        _ => return None,
    };
    if inner.is_empty() || !p.script_opts.is_empty() && !opt_values(args, p.script_opts).is_empty()
    {
        return None;
    }
    Some(wrap(p.always, inner))
}

/// Values of options (`-c V`, `-xc V` bundles, `--run V`, `--run=V`).
pub(super) fn opt_values(args: &[Arg], names: &[&str]) -> Vec<Arg> {
    let mut out = Vec::new();
    if names.is_empty() {
        return out;
    }
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        i += 1;
        if t == "--" {
            break;
        }
        let takes = names.iter().any(|n| {
            t == *n
                || (n.len() == 2
                    && !n.starts_with("--")
                    && t.len() > 2
                    && !t.starts_with("--")
                    && t.starts_with('-')
                    && t.ends_with(&n[1..])
                    && t[1..].chars().all(|c| c.is_ascii_alphabetic()))
        });
        if takes {
            if let Some(v) = args.get(i) {
                out.push(v.clone());
                i += 1;
            }
            continue;
        }
        for n in names.iter().filter(|n| n.starts_with("--")) {
            if let Some(v) = t.strip_prefix(n).and_then(|v| v.strip_prefix('=')) {
                out.push(Arg {
                    text: v.to_string(),
                    dynamic: a.dynamic,
                });
            }
        }
    }
    out
}

/// Operands: arguments that are not options or option values.
fn operands<'a>(args: &'a [Arg], values: &[&str]) -> Vec<&'a Arg> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let t = a.text.as_str();
        if t == "--" {
            out.extend(it.by_ref());
            break;
        }
        if is_opt(t) {
            if values.contains(&t) {
                it.next();
            }
        } else {
            out.push(a);
        }
    }
    out
}

fn word_matches(pat: &str, w: &str) -> bool {
    match (pat.strip_prefix('*'), pat.strip_suffix('*')) {
        _ if pat == "*" => true,
        (Some(p), _) if p.ends_with('*') => w.contains(p.trim_end_matches('*')),
        (Some(suffix), _) => w.ends_with(suffix),
        (None, Some(prefix)) => w.starts_with(prefix),
        (None, None) => w == pat,
    }
}

fn has_opt(args: &[Arg], with: &[&str]) -> bool {
    args.iter().any(|a| {
        let t = a.text.as_str();
        with.iter().any(|w| {
            t == *w
                || (!w.contains('=') && t.strip_prefix(w).is_some_and(|r| r.starts_with('=')))
                || (w.ends_with('=') && t.starts_with(w))
        })
    })
}

fn verb_matches(v: &Verb, ops: &[&Arg], args: &[Arg]) -> bool {
    let mut it = ops.iter();
    let words_ok = v
        .words
        .iter()
        .all(|pat| it.any(|a| !a.dynamic && word_matches(pat, &a.text)));
    words_ok && (v.with.is_empty() || has_opt(args, v.with))
}

// --- custom rules ------------------------------------------------------------

/// `deno eval CODE`, `bun -e CODE`, `bun --print CODE`: JavaScript judged like
/// `node -e`.
fn js_runtime(s: &mut Script, args: &[Arg], snip: &str) {
    let mut code = opt_values(args, &["-e", "--eval", "-p", "--print"]);
    if let Some(pos) = args.iter().position(|a| a.is("eval")) {
        if let Some(c) = operands(args.get(pos + 1..).unwrap_or(&[]), &[]).first() {
            code.push((*c).clone());
        }
    }
    for c in code {
        if c.dynamic {
            s.cx.hit(Ask, "interpreter runs code built at run time", snip);
        } else {
            s.code_check(&c.text, snip);
        }
    }
}

/// `parallel CMD ::: ARGS`, `parallel --pipe`, `sem CMD`: the command template
/// is a shell script with `{}` standing for each input.
fn parallel(s: &mut Script, args: &[Arg], snip: &str) {
    const V: &[&str] = &[
        "-j",
        "--jobs",
        "-S",
        "--sshlogin",
        "--joblog",
        "--results",
        "-a",
        "--arg-file",
        "-d",
        "--delimiter",
        "-n",
        "--max-args",
        "-N",
        "--colsep",
        "-C",
        "--tmpdir",
        "--timeout",
        "--retries",
        "--id",
        "--tag-string",
        "--workdir",
        "--env",
        "--basefile",
        "-I",
        "--delay",
    ];
    let mut template = Vec::new();
    for a in operands(args, V) {
        if matches!(a.text.as_str(), ":::" | "::::" | ":::+" | "::::+") {
            break;
        }
        template.push(a.clone());
    }
    if template.is_empty() {
        s.cx.hit(Ask, "parallel runs commands read from its input", snip);
        return;
    }
    // Each argument after `:::` fills the template's `{}` (or is appended when
    // the template has none): `parallel rm -rf ::: ~/a` runs `rm -rf ~/a`.
    let mut inputs: Vec<String> = operands(args, V)
        .into_iter()
        .skip_while(|a| !matches!(a.text.as_str(), ":::" | ":::+"))
        .filter(|a| !a.text.starts_with(":::"))
        .take(16)
        .map(|a| {
            if a.dynamic {
                "x".to_string()
            } else {
                a.text.clone()
            }
        })
        .collect();
    if inputs.is_empty() {
        inputs.push("x".to_string());
    }
    let base_script = words::join(&template);
    for input in inputs {
        let mut script = base_script.clone();
        script.text = if script.text.contains("{}") {
            script.text.replace("{}", &input)
        } else {
            format!("{} {input}", script.text)
        };
        s.nested(&script, snip);
        if s.cx.class == Forbidden {
            return;
        }
    }
}

/// `tmux new-session 'cmd'`, `tmux send-keys 'cmd' Enter`, `tmux run-shell`.
fn tmux(s: &mut Script, args: &[Arg], snip: &str) {
    const RUNS: &[&str] = &[
        "new-session",
        "new",
        "new-window",
        "neww",
        "split-window",
        "splitw",
        "respawn-pane",
        "respawnp",
        "respawn-window",
        "respawnw",
        "run-shell",
        "run",
        "if-shell",
        "if",
        "pipe-pane",
        "pipep",
        "display-popup",
        "popup",
    ];
    // Options of tmux commands that take a value (`-d`, `-P`, `-E`, `-h` do not).
    const V: &[&str] = &[
        "-s", "-n", "-t", "-c", "-x", "-y", "-F", "-e", "-l", "-L", "-S", "-f", "-T",
    ];
    if let Some(c) = opt_values(args, &["-c"]).into_iter().next() {
        if args.first().is_some_and(|a| a.is("-c")) {
            s.nested(&c, snip);
        }
    }
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.text.as_str();
        if RUNS.contains(&t) {
            let rest = args.get(i + 1..).unwrap_or(&[]);
            let ops: Vec<Arg> = operands(rest, V)
                .into_iter()
                .take_while(|o| !o.is(";") && !o.is("\\;"))
                .cloned()
                .collect();
            if !ops.is_empty() {
                s.nested(&words::join(&ops), snip);
            }
        } else if matches!(t, "send-keys" | "send") {
            let rest = args.get(i + 1..).unwrap_or(&[]);
            let keys: Vec<Arg> = operands(rest, V)
                .into_iter()
                .filter(|k| !matches!(k.text.as_str(), "Enter" | "C-m" | "KPEnter"))
                .cloned()
                .collect();
            if !keys.is_empty() {
                s.nested(&words::join(&keys), snip);
            }
        }
        i += 1;
    }
}

fn screen(s: &mut Script, args: &[Arg], snip: &str) {
    if let Some(pos) = args.iter().position(|a| a.is("-X")) {
        let cmd: Vec<Arg> = args.get(pos + 1..).unwrap_or(&[]).to_vec();
        if cmd.first().is_some_and(|c| c.is("stuff") || c.is("exec")) {
            s.nested(&words::join(cmd.get(1..).unwrap_or(&[])), snip);
        }
    }
}

/// `npx PKG`: a bare name usually runs the project's own tool; a version, scope,
/// URL or `--yes`/`-p` fetches from the registry.
fn npx(s: &mut Script, args: &[Arg], snip: &str) {
    let fetches = args.iter().any(|a| {
        matches!(
            a.text.as_str(),
            "-y" | "--yes" | "-p" | "--package" | "--ignore-existing"
        ) || a.text.starts_with("--package=")
    });
    let spec = args
        .iter()
        .find(|a| !is_opt(&a.text))
        .map(|a| a.text.as_str())
        .unwrap_or("");
    let versioned = spec.get(1..).is_some_and(|r| r.contains('@'))
        || spec.contains("://")
        || spec.starts_with("github:")
        || spec.starts_with("git+")
        || spec.starts_with("create-")
        || (spec.starts_with('@') && spec.contains('/'));
    if fetches || versioned {
        s.cx.hit(Ask, "downloads and runs a package", snip);
    }
}

/// npm/pnpm/yarn: global installs, installs from URLs or git, other registries.
fn node_pm(s: &mut Script, args: &[Arg], snip: &str) {
    let installs = args.iter().any(|a| {
        matches!(
            a.text.as_str(),
            "install" | "i" | "add" | "update" | "up" | "upgrade"
        )
    });
    if installs
        && args.iter().skip(1).any(|a| {
            let t = a.text.as_str();
            t.contains("://")
                || t.starts_with("git+")
                || t.starts_with("github:")
                || t.starts_with("gitlab:")
                || t.starts_with("bitbucket:")
                || t.starts_with("gist:")
        })
    {
        s.cx.hit(Ask, "installs a package from a URL or git", snip);
    }
    if has_opt(args, &["--registry", "--@*:registry"])
        || args.iter().any(|a| a.text.contains(":registry="))
    {
        s.cx.hit(Ask, "uses another package registry", snip);
    }
}

/// `make`: `$(shell …)` on the command line and `-f -`.
fn make(s: &mut Script, args: &[Arg], snip: &str) {
    if args
        .iter()
        .any(|a| a.text.contains("$(shell") || a.text.contains("${shell"))
    {
        s.cx.hit(
            Ask,
            "make evaluates a shell command given on the command line",
            snip,
        );
    }
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if (a.is("-f") || a.is("--file") || a.is("--makefile"))
            && args
                .get(i + 1)
                .is_some_and(|f| f.is("-") || f.is("/dev/stdin"))
        {
            s.cx.hit(Ask, "make reads a makefile from stdin", snip);
        }
        if a.text.starts_with("SHELL=") || a.text.starts_with(".SHELLFLAGS=") {
            s.cx.hit(Ask, "make runs recipes with another shell", snip);
        }
        i += 1;
    }
}

/// `vim -c CMD`, `+CMD`, `--cmd CMD`, `-S file`: ex commands with `!`, or that
/// call out to a shell or a script language, are judged/asked.
fn vim(s: &mut Script, args: &[Arg], snip: &str) {
    let mut cmds = opt_values(args, &["-c", "--cmd"]);
    cmds.extend(
        args.iter()
            .filter_map(|a| a.text.strip_prefix('+').filter(|c| !c.is_empty()))
            .map(Arg::lit),
    );
    for c in cmds {
        ex_command(s, &c, snip);
    }
    if args.iter().any(|a| a.is("-S")) {
        s.cx.hit(Ask, "editor sources a script file", snip);
    }
}

fn ex_command(s: &mut Script, c: &Arg, snip: &str) {
    if c.dynamic {
        s.cx.hit(Ask, "editor runs a command built at run time", snip);
        return;
    }
    let t = c.text.trim_start_matches([':', ' ']);
    if let Some(pos) = t.find('!') {
        let cmd = t.get(pos + 1..).unwrap_or("");
        s.cx.hit(Ask, "editor runs a shell command", snip);
        s.nested(&Arg::lit(cmd), snip);
    }
    let l = t.to_ascii_lowercase();
    const CALLS: &[&str] = &[
        "system(",
        "systemlist(",
        "term",
        "py",
        "lua",
        "perl",
        "ruby",
        "call ",
        "exe",
        "so ",
        "source",
        "r !",
        "w !",
        "jobstart",
        "termopen",
        "make",
        "grep",
        "vimgrep",
    ];
    if CALLS
        .iter()
        .any(|k| l.starts_with(k) || l.contains(&format!("|{k}")) || l.contains(&format!(" {k}")))
        && !l.starts_with("set ")
    {
        s.cx.hit(
            Ask,
            "editor runs code or a shell command from the command line",
            snip,
        );
    }
}

/// `gdb -ex 'shell …'`, `-ex '!…'`, `-ex 'python …'`, `-x FILE`, `--batch --args`.
fn gdb(s: &mut Script, args: &[Arg], snip: &str) {
    for c in opt_values(
        args,
        &[
            "-ex",
            "--ex",
            "-eval-command",
            "--eval-command",
            "-iex",
            "-o",
            "--one-line",
        ],
    ) {
        if c.dynamic {
            s.cx.hit(Ask, "debugger runs a command built at run time", snip);
            continue;
        }
        let t = c.text.trim_start();
        let l = t.to_ascii_lowercase();
        if let Some(cmd) = t
            .strip_prefix("shell ")
            .or_else(|| t.strip_prefix('!'))
            .or_else(|| t.strip_prefix("platform shell "))
        {
            s.cx.hit(Ask, "debugger runs a shell command", snip);
            s.nested(&Arg::lit(cmd), snip);
        } else if [
            "python",
            "pi ",
            "py ",
            "pipe",
            "|",
            "source",
            "script",
            "command script",
            "eval",
            "call",
            "print (",
            "p system",
            "call system",
            "expr",
        ]
        .iter()
        .any(|k| l.starts_with(k))
            || l.contains("system(")
        {
            s.cx.hit(Ask, "debugger runs code or a shell command", snip);
        }
    }
    if args
        .iter()
        .any(|a| a.is("-x") || a.is("--command") || a.is("-s") || a.is("--source"))
    {
        s.cx.hit(Ask, "debugger sources a script file", snip);
    }
}

/// Tcl: `expect -c`, `tclsh` reading code.
fn tcl(s: &mut Script, args: &[Arg], snip: &str) {
    if !opt_values(args, &["-c"]).is_empty()
        || args.iter().any(|a| a.is("-"))
        || operands(args, &["-f", "-encoding"]).is_empty()
    {
        s.cx.hit(Ask, "runs Tcl code (which can start programs)", snip);
    }
}

/// `sed` scripts: the `e` command and the `e` flag of `s` run commands; `w`
/// writes files (checked like a redirect). `--sandbox` forbids both.
fn sed(s: &mut Script, args: &[Arg], snip: &str) {
    if args.iter().any(|a| a.is("--sandbox")) {
        return;
    }
    let mut scripts = opt_values(args, &["-e", "--expression"]);
    let from_file = !opt_values(args, &["-f", "--file"]).is_empty();
    if scripts.is_empty() && !from_file {
        if let Some(first) = operands(args, &["-l", "--line-length", "-s", "--separate"])
            .first()
            .copied()
        {
            scripts.push(first.clone());
        }
    }
    for sc in scripts {
        if sc.dynamic {
            if sc.text.contains('e') || sc.text.contains('w') {
                s.cx.hit(Ask, "sed script built at run time", snip);
            }
            continue;
        }
        for effect in super::code::sed_effects(&sc.text) {
            match effect {
                super::code::SedEffect::Runs(Some(cmd)) => {
                    s.cx.hit(Ask, "sed runs a shell command (e)", snip);
                    s.nested(&Arg::lit(&cmd), snip);
                }
                super::code::SedEffect::Runs(None) => {
                    s.cx.hit(Ask, "sed runs text as a shell command (e)", snip);
                }
                super::code::SedEffect::Writes(f) => {
                    super::rules::write_check(s, &Arg::lit(&f), snip);
                }
            }
        }
    }
}

/// `ddrescue`/`dcfldd`: raw copies; onto a disk device they destroy it.
fn disk_copy(s: &mut Script, args: &[Arg], snip: &str) {
    s.cx.hit(Ask, "raw copy of a disk or file", snip);
    // dcfldd/dc3dd: `of=FILE`; ddrescue: `INFILE OUTFILE [MAPFILE]`.
    let mut outs: Vec<String> = args
        .iter()
        .filter_map(|a| a.text.strip_prefix("of=").map(str::to_string))
        .collect();
    if outs.is_empty() {
        if let Some(out) = operands(args, &[]).get(1) {
            outs.push(out.text.clone());
        }
    }
    for o in outs {
        if let Some((class, what)) = paths::write_danger(&o) {
            s.cx.hit(class, what, snip);
        }
    }
}

fn bundled_badblocks(s: &mut Script, args: &[Arg], snip: &str) {
    if args
        .iter()
        .any(|a| short(&a.text, 'w') && !a.text.starts_with("--"))
    {
        s.cx.hit(Forbidden, DISK, snip);
    } else if args
        .iter()
        .any(|a| short(&a.text, 'n') && !a.text.starts_with("--"))
    {
        s.cx.hit(Ask, DISK, snip);
    }
}

/// Partition and filesystem tools: reading (`fdisk -l`, `mdadm --detail`) is
/// fine; anything else asks.
fn disk_admin(s: &mut Script, args: &[Arg], snip: &str) {
    let reads = args.iter().any(|a| {
        matches!(
            a.text.as_str(),
            "-l" | "--list"
                | "--detail"
                | "-D"
                | "--examine"
                | "-E"
                | "-n"
                | "--dry-run"
                | "--query"
                | "-Q"
                | "-V"
                | "--version"
                | "-h"
                | "--help"
                | "ls"
                | "info"
                | "status"
                | "table"
        )
    });
    if !reads {
        s.cx.hit(Ask, DISK, snip);
    }
}

/// Users, file attributes, network, clock: a query is fine, a change asks.
fn system_state(s: &mut Script, args: &[Arg], snip: &str) {
    let query = args.is_empty()
        || args.iter().all(|a| {
            matches!(
                a.text.as_str(),
                "-l" | "--list"
                    | "-p"
                    | "--print"
                    | "--query"
                    | "--display"
                    | "-h"
                    | "--help"
                    | "-V"
                    | "--version"
                    | "show"
                    | "list"
                    | "status"
                    | "print"
            )
        });
    if !query {
        s.cx.hit(Ask, SYSTEM, snip);
    }
}

/// `ip`: `show`/`list`/`get`/`monitor` read; `add`/`del`/`set`/`flush`... change.
fn ip(s: &mut Script, args: &[Arg], snip: &str) {
    const CHANGE: &[&str] = &[
        "add", "del", "delete", "set", "flush", "change", "replace", "append", "prepend", "up",
        "down", "attach", "detach", "save", "restore",
    ];
    if args.iter().any(|a| CHANGE.contains(&a.text.as_str())) {
        s.cx.hit(Ask, SYSTEM, snip);
    }
    if let Some(pos) = args.iter().position(|a| a.is("exec")) {
        if args.iter().any(|a| a.is("netns")) {
            let cmd = args.get(pos + 2..).unwrap_or(&[]).to_vec();
            if !cmd.is_empty() {
                s.cx.hit(Ask, "runs a command in a network namespace", snip);
                super::rules::analyze_inner(s, cmd, snip);
            }
        }
    }
}

/// `ifconfig eth0` shows; `ifconfig eth0 down`/`10.0.0.1` changes.
fn net_admin(s: &mut Script, args: &[Arg], snip: &str) {
    let ops = operands(args, &[]);
    let reads = ops.len() <= 1
        && !args.iter().any(|a| {
            matches!(
                a.text.as_str(),
                "-s" | "-K" | "-A" | "-E" | "-d" | "--change" | "--set-ring"
            )
        });
    let read_verbs = ops.first().is_some_and(|a| {
        matches!(
            a.text.as_str(),
            "show" | "list" | "-n" | "dev" | "link" | "info" | "-a"
        )
    }) && !ops.iter().any(|a| {
        matches!(
            a.text.as_str(),
            "set" | "add" | "del" | "delete" | "change" | "replace" | "up" | "down" | "flush"
        )
    });
    if !reads && !read_verbs {
        s.cx.hit(Ask, SYSTEM, snip);
    }
}

/// `date -s`, `date MMDDhhmm`: sets the clock.
fn date(s: &mut Script, args: &[Arg], snip: &str) {
    let sets = args.iter().any(|a| {
        a.is("-s")
            || a.text.starts_with("--set")
            || (short(&a.text, 's') && !a.text.starts_with("--"))
    });
    const V: &[&str] = &[
        "-d",
        "--date",
        "-r",
        "--reference",
        "-f",
        "--file",
        "-I",
        "--iso-8601",
    ];
    let positional_set = operands(args, V).iter().any(|a| {
        !a.text.starts_with('+') && a.text.chars().all(|c| c.is_ascii_digit() || c == '.')
    });
    if sets || positional_set {
        s.cx.hit(Ask, "sets the system clock", snip);
    }
}

fn aws(s: &mut Script, args: &[Arg], snip: &str) {
    const V: &[&str] = &[
        "--profile",
        "--region",
        "--output",
        "--endpoint-url",
        "--query",
        "--color",
        "--cli-read-timeout",
        "--cli-connect-timeout",
        "--ca-bundle",
    ];
    let ops = operands(args, V);
    let service = ops.first().map(|a| a.text.as_str()).unwrap_or("");
    let op = ops.get(1).map(|a| a.text.as_str()).unwrap_or("");
    const DESTROY: &[&str] = &[
        "delete",
        "terminate",
        "remove",
        "deregister",
        "purge",
        "destroy",
        "stop",
        "reboot",
        "revoke",
        "detach",
        "disable",
        "cancel",
        "reset",
        "disassociate",
        "deactivate",
    ];
    const GRANT: &[&str] = &[
        "create-access-key",
        "create-login-profile",
        "update-login-profile",
        "attach-user-policy",
        "attach-role-policy",
        "put-user-policy",
        "put-role-policy",
        "put-bucket-policy",
        "put-bucket-acl",
        "add-permission",
        "authorize-security-group-ingress",
        "update-assume-role-policy",
        "create-user",
        "modify-image-attribute",
        "modify-snapshot-attribute",
        "put-secret-value",
        "update-function-code",
    ];
    let destroys = DESTROY.iter().any(|d| op.starts_with(d))
        || (service == "s3" && matches!(op, "rm" | "rb" | "mv"))
        || (service == "s3" && op == "sync" && args.iter().any(|a| a.is("--delete")))
        || (service == "ssm" && op == "send-command");
    if destroys {
        s.cx.hit(Ask, DELETES_CLOUD, snip);
    } else if GRANT.contains(&op) {
        s.cx.hit(Ask, "changes cloud permissions or credentials", snip);
    }
    if service == "configure" && matches!(op, "set" | "import") {
        s.cx.hit(Ask, "changes cloud credentials", snip);
    }
}

fn gh(s: &mut Script, args: &[Arg], snip: &str) {
    let ops = operands(
        args,
        &[
            "-R",
            "--repo",
            "-X",
            "--method",
            "-H",
            "--header",
            "-f",
            "-F",
            "--field",
            "--raw-field",
            "--jq",
            "-q",
            "-t",
            "--template",
            "--input",
        ],
    );
    let w: Vec<&str> = ops.iter().map(|a| a.text.as_str()).collect();
    let first = w.first().copied().unwrap_or("");
    let second = w.get(1).copied().unwrap_or("");
    let asks = match (first, second) {
        (_, "delete" | "delete-asset") => Some(DELETES_CLOUD),
        ("repo", "archive" | "rename" | "transfer") => Some(DELETES_CLOUD),
        ("repo", "edit") if args.iter().any(|a| a.text.starts_with("--visibility")) => {
            Some("changes repository visibility")
        }
        ("release", "create" | "upload" | "edit") => Some(PUBLISHES),
        ("gist", "create" | "edit") => Some("uploads files to a public service"),
        ("secret" | "variable", "set" | "remove") => Some("changes repository secrets"),
        ("ssh-key" | "gpg-key", "add") => Some("changes account keys"),
        ("auth", "token") => Some("prints a credential"),
        ("workflow", "run" | "disable") | ("run", "rerun" | "cancel") => Some("runs or stops CI"),
        ("pr", "merge") => Some("merges a pull request"),
        ("extension", "install") => Some("installs a tool outside the project"),
        _ => None,
    };
    if let Some(what) = asks {
        s.cx.hit(Ask, what, snip);
    }
    if first == "api" {
        let method = super::args::opt_value(args, &["-X", "--method"])
            .into_iter()
            .next()
            .map(|m| m.text.to_ascii_uppercase());
        let fields = args.iter().any(|a| {
            matches!(
                a.text.as_str(),
                "-f" | "-F" | "--field" | "--raw-field" | "--input"
            )
        });
        match method.as_deref() {
            Some("GET") | Some("HEAD") => {}
            Some(_) => s.cx.hit(Ask, "changes data through the GitHub API", snip),
            None if fields => s.cx.hit(Ask, "changes data through the GitHub API", snip),
            None => {}
        }
    }
}

fn prod_flag(s: &mut Script, args: &[Arg], snip: &str) {
    if args.iter().any(|a| a.is("--prod") || a.is("--production")) {
        s.cx.hit(Ask, PUBLISHES, snip);
    }
}

fn ansible(s: &mut Script, args: &[Arg], snip: &str) {
    let module = super::args::opt_value(args, &["-m", "--module-name"]);
    if let Some(a) = super::args::opt_value(args, &["-a", "--args"])
        .into_iter()
        .next()
    {
        let m = module.first().map(|m| m.text.as_str()).unwrap_or("command");
        if matches!(
            m,
            "command" | "shell" | "raw" | "ansible.builtin.shell" | "ansible.builtin.command"
        ) {
            s.cx.hit(Ask, "runs a command on remote machines", snip);
            s.nested(&a, snip);
        } else {
            s.cx.hit(Ask, "changes remote machines", snip);
        }
    }
}

fn kubectl(s: &mut Script, args: &[Arg], snip: &str) {
    const V: &[&str] = &[
        "-n",
        "--namespace",
        "--context",
        "--cluster",
        "--kubeconfig",
        "-l",
        "--selector",
        "-o",
        "--output",
        "-c",
        "--container",
        "-f",
        "--filename",
        "--field-selector",
        "--replicas",
        "--user",
        "-s",
        "--server",
        "--token",
        "--as",
        "--type",
        "--image",
        "--port",
        "--timeout",
        "--grace-period",
        "-p",
        "--patch",
        "--sort-by",
        "--since",
        "--tail",
    ];
    let ops = operands(args, V);
    let verb = ops.first().map(|a| a.text.as_str()).unwrap_or("");
    let what = match verb {
        "delete" | "drain" | "cordon" | "taint" | "replace" => Some(CLUSTER),
        "scale"
            if args.iter().any(|a| a.is("--replicas=0"))
                || super::args::opt_value(args, &["--replicas"])
                    .iter()
                    .any(|r| r.is("0")) =>
        {
            Some(CLUSTER)
        }
        "rollout" if ops.get(1).is_some_and(|a| a.is("undo") || a.is("restart")) => Some(CLUSTER),
        "certificate" => Some("approves cluster credentials"),
        "apply" | "create"
            if super::args::opt_value(args, &["-f", "--filename"])
                .iter()
                .any(|f| f.text.contains("://")) =>
        {
            Some("applies manifests downloaded from a URL")
        }
        "apply" if args.iter().any(|a| a.text.starts_with("--prune")) => Some(CLUSTER),
        "patch" | "edit" | "set" | "label" | "annotate"
            if ops.iter().any(|a| a.text.starts_with("node")) =>
        {
            Some(CLUSTER)
        }
        _ => None,
    };
    if let Some(w) = what {
        s.cx.hit(Ask, w, snip);
    }
    if matches!(verb, "exec" | "debug" | "run" | "attach") {
        if let Some(pos) = args.iter().position(|a| a.is("--")) {
            let cmd = args.get(pos + 1..).unwrap_or(&[]).to_vec();
            container_command(s, cmd, snip);
        }
        if args
            .iter()
            .any(|a| a.is("--privileged") || a.text.starts_with("--profile=sysadmin"))
        {
            s.cx.hit(Ask, "runs a privileged container", snip);
        }
    }
}

/// A command run inside a container or on a cluster: judged like a local
/// one, but capped at Ask (the container is not this machine).
fn container_command(s: &mut Script, cmd: Vec<Arg>, snip: &str) {
    if cmd.is_empty() {
        return;
    }
    if s.nest >= 8 || s.depth > super::MAX_DEPTH {
        s.cx.hit(Ask, "commands nested too deeply to analyse", snip);
        return;
    }
    if !super::rules::inner_fits(s, &cmd, snip) {
        return;
    }
    let mut inner = s.cx.side();
    {
        let mut sub = super::Script::new(
            s.src,
            s.docs.clone(),
            s.depth + 1,
            s.vars.child(),
            &mut inner,
        );
        sub.nest = s.nest + 1;
        super::rules::analyze(&mut sub, cmd, &[], snip);
    }
    s.cx.join_budget(&inner);
    if inner.class > Safe {
        let what = format!("in a container: {}", inner.reason);
        s.cx.hit(Ask, &what, snip);
    }
}

fn docker(s: &mut Script, args: &[Arg], snip: &str) {
    const V: &[&str] = &[
        "-H",
        "--host",
        "--context",
        "--config",
        "-l",
        "--log-level",
        "-v",
        "--volume",
        "-e",
        "--env",
        "-p",
        "--publish",
        "--name",
        "-w",
        "--workdir",
        "-u",
        "--user",
        "--network",
        "--net",
        "--entrypoint",
        "-f",
        "--file",
        "--env-file",
        "--mount",
        "-t",
        "--tag",
        "--platform",
        "--filter",
        "--format",
        "--memory",
        "-m",
        "--cpus",
        "--label",
        "--add-host",
        "--build-arg",
        "--target",
        "-c",
        "--cpu-shares",
        "--hostname",
        "-h",
        "--device",
        "--cap-add",
        "--cap-drop",
        "--pid",
        "--ipc",
        "--uts",
        "--userns",
        "--security-opt",
        "--restart",
        "--log-driver",
        "--log-opt",
        "--tmpfs",
        "--ulimit",
        "--shm-size",
        "--runtime",
        "--gpus",
        "--pull",
        "--since",
        "--until",
        "-n",
        "--tail",
        "-s",
        "--signal",
        "--time",
        "--project-name",
        "--profile",
        "--env-file",
        "--detach-keys",
        "--cidfile",
        "--dns",
        "--expose",
        "--health-cmd",
        "--link",
        "--mac-address",
        "--stop-signal",
        "--volumes-from",
        "--group-add",
        "--cgroupns",
        "--cgroup-parent",
        "--secret",
        "--ssh",
        "--cache-from",
        "--cache-to",
        "--output",
        "-o",
        "--progress",
        "--builder",
    ];
    let ops = operands(args, V);
    let w: Vec<&str> = ops.iter().map(|a| a.text.as_str()).collect();
    let first = w.first().copied().unwrap_or("");
    let second = w.get(1).copied().unwrap_or("");
    let forced = args
        .iter()
        .any(|a| a.is("-f") || a.is("--force") || short(&a.text, 'f') && !a.text.starts_with("--"));
    let what = match (first, second) {
        ("system", "prune") | (_, "prune") => Some("discards docker data"),
        ("system", "reset") => Some("discards docker data"),
        ("volume", "rm" | "remove") => Some("discards docker data"),
        ("rm" | "rmi", _) | ("container" | "image", "rm" | "remove") if forced => {
            Some("force-deletes containers or images")
        }
        ("rm", _) if args.iter().any(|a| a.is("-v") || a.is("--volumes")) => {
            Some("discards docker data")
        }
        ("kill", _) | ("container", "kill") => Some("kills containers"),
        ("push", _) | ("image", "push") | ("manifest", "push") | ("buildx", "imagetools") => {
            Some(PUBLISHES)
        }
        ("buildx", "build") | ("build", _) if args.iter().any(|a| a.is("--push")) => {
            Some(PUBLISHES)
        }
        ("swarm", "leave")
        | ("node", "rm")
        | ("service", "rm")
        | ("stack", "rm")
        | ("secret", "rm")
        | ("network", "rm") => Some("deletes cluster resources"),
        ("plugin", "install") => Some("installs a tool outside the project"),
        ("context", "rm") => Some("deletes docker configuration"),
        _ => None,
    };
    if let Some(what) = what {
        s.cx.hit(Ask, what, snip);
    }
    if first == "compose" {
        compose_words(s, w.get(1..).unwrap_or(&[]), args, snip);
        return;
    }
    let runs = matches!(first, "run" | "exec" | "create")
        || (first == "container" && matches!(second, "run" | "exec" | "create"));
    if !runs {
        return;
    }
    container_flags(s, args, snip);
    // `docker exec CONTAINER CMD…` / `docker run IMAGE CMD…`.
    let skip = if first == "container" { 2 } else { 1 };
    if let Some(image) = ops.get(skip) {
        let at = args
            .iter()
            .position(|a| std::ptr::eq(a, *image))
            .unwrap_or(args.len());
        let cmd = args.get(at + 1..).unwrap_or(&[]).to_vec();
        container_command(s, cmd, snip);
    }
}

fn compose(s: &mut Script, args: &[Arg], snip: &str) {
    let ops = operands(
        args,
        &[
            "-f",
            "--file",
            "-p",
            "--project-name",
            "--profile",
            "--env-file",
        ],
    );
    let w: Vec<&str> = ops.iter().map(|a| a.text.as_str()).collect();
    compose_words(s, &w, args, snip);
}

fn compose_words(s: &mut Script, w: &[&str], args: &[Arg], snip: &str) {
    let volumes = args.iter().any(|a| a.is("-v") || a.is("--volumes"));
    match w.first().copied() {
        Some("down") if volumes => s.cx.hit(Ask, "discards docker data", snip),
        Some("rm") if volumes || args.iter().any(|a| a.is("-f") || a.is("--force")) => {
            s.cx.hit(Ask, "discards docker data", snip)
        }
        Some("push") => s.cx.hit(Ask, PUBLISHES, snip),
        Some("run" | "exec") => {
            container_flags(s, args, snip);
            if let Some(svc) = w.get(1) {
                let at = args.iter().position(|a| a.is(svc)).unwrap_or(args.len());
                container_command(s, args.get(at + 1..).unwrap_or(&[]).to_vec(), snip);
            }
        }
        _ => {}
    }
}

/// `--privileged`, host namespaces, and mounts of `/`, system or home paths
/// or the docker socket give a container this machine.
fn container_flags(s: &mut Script, args: &[Arg], snip: &str) {
    let host_ns = args.iter().any(|a| {
        let t = a.text.as_str();
        t == "--privileged"
            || t == "--privileged=true"
            || t == "--pid=host"
            || t == "--ipc=host"
            || t == "--userns=host"
            || t == "--uts=host"
            || t.starts_with("--cap-add=ALL")
            || t.starts_with("--cap-add=SYS_ADMIN")
            || t.starts_with("--device")
            || t.starts_with("--security-opt=apparmor=unconfined")
            || t.starts_with("--security-opt=seccomp=unconfined")
    }) || super::args::opt_value(args, &["--cap-add", "--pid", "--security-opt"])
        .iter()
        .any(|v| {
            matches!(v.text.as_str(), "ALL" | "SYS_ADMIN" | "host")
                || v.text.ends_with("unconfined")
        });
    if host_ns {
        s.cx.hit(Ask, "runs a privileged container", snip);
    }
    let mut mounts = super::args::opt_value(args, &["-v", "--volume", "--mount"]);
    mounts.retain(|m| !m.text.is_empty());
    for m in mounts {
        let src = if m.text.contains("source=") || m.text.contains("src=") {
            m.text
                .split(',')
                .find_map(|kv| {
                    kv.strip_prefix("source=")
                        .or_else(|| kv.strip_prefix("src="))
                })
                .unwrap_or("")
                .to_string()
        } else {
            m.text.split(':').next().unwrap_or("").to_string()
        };
        let src = src
            .replace("$HOME", "~")
            .replace("${HOME}", "~")
            .replace("$(pwd)", ".")
            .replace("${PWD}", ".")
            .replace("$PWD", ".");
        if src.starts_with(['/', '~'])
            && (paths::is_critical(&src)
                || paths::is_system(&src)
                || paths::is_secret(&src)
                || src.ends_with("docker.sock")
                || src == "~"
                || src.starts_with("~/."))
        {
            s.cx.hit(
                Ask,
                "mounts a system, home or credential path into a container",
                snip,
            );
        }
    }
}

fn redis(s: &mut Script, args: &[Arg], snip: &str) {
    let ops = operands(
        args,
        &[
            "-h", "-p", "-a", "-n", "-u", "--user", "--pass", "-s", "-r", "-i", "--eval",
        ],
    );
    let cmd = ops
        .first()
        .map(|a| a.text.to_ascii_lowercase())
        .unwrap_or_default();
    let sub = ops
        .get(1)
        .map(|a| a.text.to_ascii_lowercase())
        .unwrap_or_default();
    let destroys = matches!(
        cmd.as_str(),
        "flushall"
            | "flushdb"
            | "shutdown"
            | "debug"
            | "del"
            | "unlink"
            | "slaveof"
            | "replicaof"
            | "module"
            | "swapdb"
            | "migrate"
            | "restore"
            | "eval"
            | "evalsha"
            | "fcall"
            | "script"
            | "function"
            | "failover"
    ) || (cmd == "config"
        && matches!(sub.as_str(), "set" | "rewrite" | "resetstat"))
        || (cmd == "acl" && matches!(sub.as_str(), "setuser" | "deluser" | "save" | "load"))
        || (cmd == "client" && sub == "kill")
        || (cmd == "cluster"
            && matches!(sub.as_str(), "reset" | "forget" | "failover" | "flushslots"));
    if destroys || args.iter().any(|a| a.is("--eval")) {
        s.cx.hit(Ask, "destructive or administrative redis command", snip);
    }
    if args.iter().any(|a| a.is("-x")) && cmd.is_empty() {
        s.cx.hit(Ask, "redis reads commands from stdin", snip);
    }
}

/// Mongo shell code: drops, deletes, removals, updates of everything.
fn mongo(s: &mut Script, args: &[Arg], snip: &str) {
    for code in super::args::opt_value(args, &["--eval", "-e"]) {
        if code.dynamic || mongo_danger(&code.text) {
            s.cx.hit(Ask, DB, snip);
        }
    }
    if args
        .iter()
        .any(|a| a.text.ends_with(".js") && !is_opt(&a.text))
    {
        s.cx.hit(Ask, "runs a database script", snip);
    }
}

pub(super) fn mongo_danger(code: &str) -> bool {
    let l = code.to_ascii_lowercase().replace(' ', "");
    [
        "drop",
        "delete",
        "remove(",
        "updatemany({}",
        "replaceone",
        "renamecollection",
        "shutdownserver",
        "dropuser",
        "createuser",
        "grantroles",
        "fsynclock",
        "adminCommand",
        "runcommand",
        "$where",
        "eval(",
    ]
    .iter()
    .any(|k| l.contains(&k.to_ascii_lowercase()))
}

/// Other SQL clients: the statement options are checked like psql's.
fn other_sql(s: &mut Script, args: &[Arg], snip: &str) {
    for sql in super::args::opt_value(
        args,
        &[
            "-e",
            "--execute",
            "-execute",
            "-q",
            "--query",
            "-c",
            "--command",
            "-Q",
            "--sql",
        ],
    ) {
        sql_check(s, &sql, snip);
    }
}

// --- unknown programs -------------------------------------------------------

/// Programs whose options and operands are known not to run commands (their
/// `-c` counts, compiles or checks; their `--` separates paths). A program
/// neither here nor judged elsewhere is unknown to the classifier.
#[rustfmt::skip]
static EVERYDAY: Names = Names::new(&[
    "ls", "cat", "less", "more", "head", "tail", "grep", "egrep", "fgrep", "rg", "ag", "ack",
    "wc", "cut", "uniq", "sort", "tr", "diff", "cmp", "comm", "join", "paste", "column", "od",
    "hexdump", "xxd", "stat", "file", "du", "df", "ping", "ps", "pgrep", "top", "htop", "free",
    "uptime", "id", "whoami", "hostname", "uname", "which", "type", "echo", "printf", "pwd",
    "test", "[", "[[", "true", "false", "sleep", "seq", "basename", "dirname", "realpath",
    "readlink", "mkdir", "touch", "tree", "bat", "eza", "exa", "lsd", "fd", "fdfind", "jq", "yq",
    "gojq", "jless", "gcc", "g++", "cc", "c++", "clang", "clang++", "ld", "ar", "nm", "objdump",
    "readelf", "strip", "as", "cpp", "rustc", "rustup", "rustfmt", "cargo-clippy", "go", "gofmt",
    "javac", "java", "kotlinc", "scalac", "tsc", "node", "deno", "bun", "pytest", "mypy", "ruff",
    "black", "isort", "flake8", "pylint", "coverage", "jest", "vitest", "mocha", "eslint",
    "prettier", "rollup", "webpack", "vite", "esbuild", "swc", "babel", "stylelint",
    "markdownlint", "yamllint", "hadolint", "shellcheck", "shfmt", "actionlint", "gunicorn",
    "uvicorn", "celery", "alembic", "nginx", "cmake", "ctest", "cpack", "ninja", "meson", "bazel",
    "bazelisk", "buck2", "zig", "gzip", "gunzip", "xz", "unxz", "zstd", "bzip2", "lz4", "brotli",
    "pigz", "zip", "7z", "base64", "sha256sum", "sha1sum", "md5sum", "b2sum", "cksum", "openssl",
    "gpg", "ssh-keygen", "iconv", "dos2unix", "fold", "fmt", "nl", "expand", "unexpand", "tac",
    "shuf", "split", "csplit", "lsof", "strings", "pg_dump", "pg_dumpall", "pg_isready",
    "mysqldump", "iostat", "vmstat", "mpstat", "sar", "dig", "nslookup", "host", "whois", "date",
    "cal", "bc", "dc", "expr", "factor", "numfmt", "nproc", "lscpu", "lsblk", "lsusb", "lspci",
    "dmesg", "journalctl", "ss", "netstat", "traceroute", "tracepath", "mtr", "look", "locate",
    "whereis", "apropos", "man", "info", "tldr", "help", "code", "emacs", "nano", "micro",
    "hx", "kak", "helix", "ctags", "cscope", "clang-format", "clang-tidy", "cppcheck", "valgrind",
    "perf", "protoc", "buf", "grpcurl", "sqlc", "tokei", "cloc", "scc", "wget", "curl", "http",
    "xh", "yarnpkg", "corepack", "pip", "pip3", "pipx", "pipenv", "virtualenv", "tox", "cabal",
    "ghc", "ghci", "stack", "dune", "opam", "ocaml", "elixir", "iex", "erl", "escript", "rebar3",
    "mix", "julia", "R", "Rscript", "dotnet", "swift", "swiftc", "xcodebuild", "xcrun",
    "pod", "dart", "flutter", "kotlin", "gradle", "gradlew", "mvn", "mvnw", "ant", "sbt",
    "lein", "clojure", "clj", "composer", "phpunit", "php", "rake", "rspec", "rails",
    "bundle", "bundler", "gem", "irb", "crystal", "nim", "v", "odin", "gleam", "lua", "luarocks",
    "terraform-docs", "tflint", "tfsec", "checkov", "trivy", "grype", "syft", "kustomize",
    "kubeval", "kubeconform", "conftest", "opa", "k9s", "stern", "kubectx", "kubens",
    "sqlite3", "duckdb", "psql", "mysql", "mariadb", "tput", "stty", "clear", "reset", "tty",
    "locale", "getconf", "getent", "ldd", "pkg-config", "autoconf", "automake", "autoreconf",
    "libtool", "configure", "m4", "bison", "flex", "yacc", "lex", "patch", "diff3", "sdiff",
    "colordiff", "delta", "difft", "git-lfs", "tig", "lazygit", "pre-commit", "commitlint",
    "husky", "lint-staged", "nx", "turbo", "lerna", "rush", "just", "task", "mage", "invoke",
    "doit", "scons", "waf", "premake5", "xmake", "cargo-nextest", "nextest", "wasm-pack",
    "trunk", "wasmtime", "wasmer", "tar", "unzip", "zcat", "bzcat", "xzcat", "zstdcat",
    "fc-list", "convert", "magick", "ffmpeg", "ffprobe", "identify", "pandoc", "mdbook",
    "hugo", "jekyll", "mkdocs", "sphinx-build", "doxygen", "typst", "latexmk", "pdflatex",
    "xelatex", "lualatex", "iperf", "iperf3", "nmap", "tcpdump", "tshark", "wireshark",
    "cut", "awk", "env", "printenv", "getopt", "mktemp", "install", "sync", "cksum",
]);

/// Whether the classifier knows what `name` does with its arguments.
pub(super) fn known(name: &str) -> bool {
    find(name).is_some()
        || EVERYDAY.contains(name)
        || SHELLS.contains(name)
        || SQL_CLIENTS.contains(name)
        || interp_lang(name).is_some()
        || super::rules::handled(name)
}

/// Something that reads like a command: its first word is a program the
/// classifier knows, a path, or it holds a substitution or a pipe.
fn command_like(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("");
    let first = base(first.trim_start_matches(['(', '{', '!']));
    (known(first) && !first.is_empty() && text.contains(char::is_whitespace))
        || text.contains("$(")
        || text.contains('`')
        || text.contains("| sh")
        || text.contains("|sh")
        || text.contains("| bash")
        || text.starts_with("./")
        || text.starts_with('/') && text.contains(char::is_whitespace)
}

/// An unknown program given a command to run (`X -c 'curl … | sh'`,
/// `X --run STRING`, `X -- rm …`): the command is judged, and the call asks.
pub(super) fn unknown(s: &mut Script, name: &str, args: &[Arg], snip: &str) {
    // Cheap test first: most commands have no option or operand that could
    // be a command, and need no lookup of the name.
    let candidate = args.iter().any(|a| {
        let t = a.text.as_str();
        t == "--" || (t.starts_with('-') && t.len() > 1) || a.dynamic
    }) || args.first().is_some_and(|a| {
        let b = base(&a.text);
        SHELLS.contains(b) || interp_lang(b).is_some() || DANGER_NAMES.contains(b)
    });
    if !candidate || known(name) {
        return;
    }
    let mut runs = false;
    for v in opt_values(args, &["-c", "-e", "-x"]) {
        if v.dynamic || command_like(&v.text) {
            runs = true;
            s.nested(&v, snip);
        }
    }
    for v in opt_values(
        args,
        &[
            "--run",
            "--command",
            "--cmd",
            "--exec",
            "--eval",
            "--shell-command",
            "--script",
            "--execute",
            "--on-success",
            "--on-failure",
            "--pre",
            "--post",
            "--hook",
        ],
    ) {
        runs = true;
        s.nested(&v, snip);
    }
    if let Some(i) = args.iter().position(|a| a.is("--")) {
        let cmd = args.get(i + 1..).unwrap_or(&[]);
        if let Some(first) = cmd.first() {
            let b = base(&first.text);
            if first.dynamic
                || (known(b) && !EVERYDAY_OPERANDS.contains(&b))
                || first.text.starts_with("./")
                || first.text.starts_with('/')
            {
                runs = true;
                super::rules::analyze_inner(s, cmd.to_vec(), snip);
            }
        }
    }
    // `X sh -c …`, `X rm -rf …`: an unknown wrapper in front of a command
    // that is judged on its own.
    if let Some(first) = args.first().filter(|a| !a.dynamic && !is_opt(&a.text)) {
        let b = base(&first.text);
        if SHELLS.contains(b) || interp_lang(b).is_some() || DANGER_NAMES.contains(b) {
            runs = true;
            super::rules::analyze_inner(s, args.to_vec(), snip);
        }
    }
    if runs {
        s.cx.hit(Ask, "an unknown program is given a command to run", snip);
    }
}

/// Known names that are also ordinary operand words (`X -- test`).
#[rustfmt::skip]
const EVERYDAY_OPERANDS: &[&str] = &["test", "true", "false", "help", "info", "v", "task", "install", "configure", "reset", "clear", "sync"];

/// Commands that are judged when an unknown program appears to wrap them.
#[rustfmt::skip]
static DANGER_NAMES: Names = Names::new(&[
    "rm", "dd", "mkfs", "shred", "wipefs", "curl", "wget", "sudo", "su", "chmod", "chown", "mv",
    "kill", "pkill", "killall", "reboot", "shutdown", "git", "nc", "ncat", "socat", "eval",
    "exec", "env", "xargs", "find", "truncate", "crontab", "systemctl",
]);

#[cfg(test)]
mod tests {
    use super::*;

    /// A name in two entries would silently use only the first.
    #[test]
    fn every_program_name_has_one_entry() {
        let mut seen = std::collections::HashSet::new();
        for p in TABLE {
            for n in p.names {
                assert!(seen.insert(*n), "{n} is in two table entries");
            }
        }
    }

    /// The sorted index finds every entry by each of its names, and nothing else.
    #[test]
    fn every_name_is_found_in_its_own_entry() {
        for p in TABLE {
            for n in p.names {
                // Names are unique, so an entry is known by its names.
                assert_eq!(find(n).map(|f| f.names), Some(p.names), "{n}");
            }
        }
        for n in ["", "a", "zzzz", "git", "rm", "kubectl2", "dockerx"] {
            let linear = TABLE.iter().find(|p| p.names.contains(&n));
            assert_eq!(find(n).map(|p| p.names), linear.map(|p| p.names), "{n}");
        }
    }

    #[test]
    fn verb_words_match_in_order_with_globs() {
        let ops = [
            Arg::lit("compute"),
            Arg::lit("instances"),
            Arg::lit("delete"),
        ];
        let refs: Vec<&Arg> = ops.iter().collect();
        let v = verb(&["*", "delete"], &[], Ask, "x");
        assert!(verb_matches(&v, &refs, &ops));
        let v = verb(&["delete", "*"], &[], Ask, "x");
        assert!(!verb_matches(&v, &refs, &ops));
        assert!(word_matches("delete-*", "delete-bucket"));
        assert!(word_matches("*destroy*", "apps:destroy"));
        assert!(!word_matches("rm", "rmi"));
    }
}
