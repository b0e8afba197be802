// What an SDK call ended with, for scripts that check refusals: the HTTP status (200 when it succeeded), or that
// status with the error's type and conflicting path.
async function statusOf(promise) {
  return (await outcomeOf(promise)).status;
}

async function outcomeOf(promise) {
  try {
    await promise;
    return { status: 200 };
  } catch (e) {
    const err = e.error && e.error.error;
    return { status: e.status, type: err ? err.type : undefined, conflictingPath: err ? err.conflicting_path : undefined };
  }
}

module.exports = { statusOf, outcomeOf };
