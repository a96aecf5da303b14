// Which agent versions a hub serves: its own minor version and the one before, of the same major
// version (for 0.x, the same rule on the minor number). An agent newer than its hub is refused, as
// Kubernetes refuses a kubelet newer than its API server: upgrade the hub first, then the agents,
// one minor version at a time.

const VERSION = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$/

export interface Version {
  major: number
  minor: number
  patch: number
}

export function parseVersion(text: string): Version | undefined {
  const m = VERSION.exec(text.trim())
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined
}

/** Why a hub at `hubVersion` does not serve an agent at `agentVersion`, or undefined when it does. */
export function agentVersionProblem(hubVersion: string, agentVersion: string): string | undefined {
  const hub = parseVersion(hubVersion)
  const agent = parseVersion(agentVersion)
  if (!agent) return `agent version "${agentVersion}" is not a version (MAJOR.MINOR.PATCH)`
  if (!hub) return undefined
  const oldest = hub.minor === 0 ? `${hub.major}.0` : `${hub.major}.${hub.minor - 1}`
  const current = `${hub.major}.${hub.minor}`
  const served = `this hub (${hubVersion}), which serves agents ${oldest === current ? current : `${oldest} and ${current}`}`
  if (agent.major > hub.major || (agent.major === hub.major && agent.minor > hub.minor)) {
    return `agent ${agentVersion} is newer than ${served}: upgrade the hub first`
  }
  if (agent.major < hub.major || agent.minor < hub.minor - 1) {
    return `agent ${agentVersion} is too old for ${served}: upgrade the agent one minor version at a time`
  }
  return undefined
}
