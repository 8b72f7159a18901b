"""What the operations channel reads when a Dagster run fails."""


def run_failure_text(job_name: str, run_id: str, message: str, step: str | None) -> str:
    where = f" in step {step}" if step else ""
    return f"Run {run_id[:8]} of job {job_name} failed{where}: {message}"
