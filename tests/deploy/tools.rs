//! The external tools: osls (the Serverless packager, pinned in package.json) and cfn-lint
//! (pinned in scripts/requirements-test.txt), with the Node.js osls runs on and the Python
//! cfn-lint runs on. All come from `scripts/setup-test-deps`; a missing tool fails the test with
//! that hint, never skips it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use serde_json::Value;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tool named by `env_var` (as `scripts/setup-test-deps` prints it), else its default place.
fn tool(env_var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(default));
    assert!(
        path.is_file(),
        "{} not found (from {env_var} or the default {default}): run scripts/setup-test-deps \
         (npm ci installs osls; .venv-test gets cfn-lint), then eval its output or use scripts/test",
        path.display()
    );
    path
}

pub fn osls() -> PathBuf {
    tool("CHATBOT_TEST_OSLS", "node_modules/.bin/osls")
}

pub fn cfn_lint() -> PathBuf {
    tool("CHATBOT_TEST_CFN_LINT", ".venv-test/bin/cfn-lint")
}

/// The Python interpreter of cfn-lint's virtualenv (it has cfn-lint's template decoder).
pub fn cfn_python() -> PathBuf {
    let python = cfn_lint().with_file_name("python3");
    assert!(
        python.is_file(),
        "{} not found next to cfn-lint: run scripts/setup-test-deps",
        python.display()
    );
    python
}

/// A CloudFormation YAML file (short-form tags like `!Ref` included) as JSON, read by cfn-lint's
/// own decoder, so the checks see what cfn-lint and CloudFormation see.
pub fn cfn_yaml(path: &Path) -> Value {
    let output = Command::new(cfn_python())
        .args([
            "-c",
            "import json, sys\n\
             from cfnlint.decode import decode\n\
             template, problems = decode(sys.argv[1])\n\
             if problems: sys.exit('\\n'.join(str(p) for p in problems))\n\
             print(json.dumps(template))",
        ])
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "decode {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("decoded template is JSON")
}

/// A fresh directory under the system temp dir, removed by [`ScratchDir`]'s drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(label: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chatbot-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The files `serverless.yml` reads (its `${file(…)}` sources). osls works in `.serverless/`
/// of the service directory, so each package runs in its own copy: parallel runs cannot clash
/// and the repository stays clean. A file missing here fails the package with osls's message.
const SERVICE_FILES: &[&str] = &[
    "serverless.yml",
    "scripts/bedrock-models.js",
    "scripts/guardrail.js",
    "dashboards/render.js",
    "dashboards/chatbot.json",
];

/// `osls package` of the repository's serverless.yml for `stage`, with `artifact` as the
/// function code and extra `--param`s. Needs no AWS account: AWS credentials are removed from
/// its environment so none can be used.
pub fn package(stage: &str, region: &str, artifact: &Path, params: &[&str]) -> Value {
    try_package(stage, region, artifact, params).unwrap_or_else(|e| panic!("{e}"))
}

/// [`package`], with osls's output as the error when it refuses the stage.
pub fn try_package(
    stage: &str,
    region: &str,
    artifact: &Path,
    params: &[&str],
) -> Result<Value, String> {
    let service = ScratchDir::new(&format!("osls-{stage}"));
    for file in SERVICE_FILES {
        let to = service.0.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo().join(file), &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    let out = service.0.join("out");
    let started = Instant::now();
    let mut cmd = Command::new(osls());
    cmd.current_dir(&service.0)
        .args(["package", "--stage", stage, "--region", region, "--package"])
        .arg(&out)
        .arg(format!("--param=artifact={}", artifact.display()));
    for p in params {
        cmd.arg(format!("--param={p}"));
    }
    for var in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_PROFILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SLS_TELEMETRY_DISABLED", "1");
    let output = cmd.output().expect("run osls");
    if !output.status.success() {
        return Err(format!(
            "osls package --stage {stage} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprintln!(
        "osls package --stage {stage}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let file = out.join("cloudformation-template-update-stack.json");
    let text = std::fs::read_to_string(&file).expect("packaged template");
    Ok(serde_json::from_str(&text).expect("template is JSON"))
}

/// cfn-lint on a template file as written (YAML or JSON), for `regions`.
pub fn lint_file(file: &Path, regions: &[&str]) -> Result<(), String> {
    let output = Command::new(cfn_lint())
        .arg(file)
        .arg("--regions")
        .args(regions)
        .output()
        .expect("run cfn-lint");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cfn-lint exit {:?}:\n{}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// cfn-lint on `template`. W3005 (a DependsOn that a Ref already implies) is ignored: osls itself
/// writes those DependsOn on the HTTP API stage and routes, not serverless.yml, and they are
/// harmless. Anything else — error or warning — is returned as the failure text.
pub fn lint(template: &Value) -> Result<(), String> {
    let dir = ScratchDir::new("cfn-lint");
    let file = dir.0.join("template.json");
    std::fs::write(&file, serde_json::to_vec_pretty(template).unwrap()).unwrap();
    let started = Instant::now();
    let output = Command::new(cfn_lint())
        .arg(&file)
        .args(["--ignore-checks", "W3005"])
        .output()
        .expect("run cfn-lint");
    eprintln!("cfn-lint: {:.1} s", started.elapsed().as_secs_f64());
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cfn-lint exit {:?}:\n{}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
