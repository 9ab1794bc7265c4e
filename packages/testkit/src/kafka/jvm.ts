import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { canConnect, freePort } from '../net.ts';
import { cacheDir } from '../paths.ts';
import { type KafkaHandle, KafkaUnavailableError } from './types.ts';

const run = promisify(execFile);

/** Apache Kafka release the JVM path runs; the Docker path uses the image of the same version. */
export const kafkaVersion = '4.1.1';
const startedLine = 'Kafka Server started';
const startTimeoutMs = 120_000;

interface BrokerNode {
  nodeId: number;
  brokerPort: number;
  controllerPort: number;
  dataDir: string;
  process?: ChildProcess;
}

export interface JvmClusterOptions {
  brokers: number;
  /** Leave the brokers running after this process exits (for `pnpm kafka:up`). */
  detached?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Finds a Java 17+ runtime: JAVA_HOME first, then `java` on PATH. */
export async function findJava(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const candidates = [env.JAVA_HOME ? join(env.JAVA_HOME, 'bin', 'java') : undefined, 'java'].filter(
    (candidate): candidate is string => candidate !== undefined,
  );
  for (const java of candidates) {
    try {
      const { stderr } = await run(java, ['-version'], { env });
      const major = Number(/version "(\d+)/.exec(stderr)?.[1] ?? 0);
      if (major >= 17) return java;
    } catch {
      // Not runnable: try the next candidate; the error below names what was looked for.
    }
  }
  throw new KafkaUnavailableError(
    'no Java 17+ runtime found (looked at $JAVA_HOME/bin/java and `java` on PATH); Kafka 4.x needs Java 17 or newer',
  );
}

/** Apache Kafka's jars from Maven Central, fetched once with Maven into the ignored cache folder. */
export async function ensureKafkaJars(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const home = join(cacheDir(env), 'kafka', kafkaVersion);
  const lib = join(home, 'lib');
  if (existsSync(join(lib, `kafka_2.13-${kafkaVersion}.jar`))) return lib;
  try {
    await run('mvn', ['--version'], { env });
  } catch (cause) {
    throw new KafkaUnavailableError(
      'Maven (`mvn`) not found on PATH: it fetches org.apache.kafka:kafka_2.13 from Maven Central',
      { cause },
    );
  }
  await mkdir(home, { recursive: true });
  // Several test processes may fetch at once; each works in its own folder and the first rename wins.
  const work = await mkdtemp(join(home, 'fetch-'));
  await writeFile(join(work, 'pom.xml'), kafkaPom());
  try {
    await run(
      'mvn',
      ['-q', '-B', 'dependency:copy-dependencies', '-DoutputDirectory=lib', '-DincludeScope=runtime'],
      {
        cwd: work,
        env,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  } catch (cause) {
    await rm(work, { recursive: true, force: true });
    throw new KafkaUnavailableError(`Maven could not fetch Apache Kafka ${kafkaVersion} from Maven Central`, {
      cause,
    });
  }
  try {
    await rename(join(work, 'lib'), lib);
  } catch (error) {
    if (!existsSync(lib)) throw error;
  }
  await rm(work, { recursive: true, force: true });
  return lib;
}

function kafkaPom(): string {
  const dependency = (group: string, artifact: string, version: string) =>
    `<dependency><groupId>${group}</groupId><artifactId>${artifact}</artifactId><version>${version}</version></dependency>`;
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice.testkit</groupId><artifactId>kafka-runtime</artifactId><version>${kafkaVersion}</version>
  <dependencies>
    ${dependency('org.apache.kafka', 'kafka_2.13', kafkaVersion)}
    ${dependency('org.apache.logging.log4j', 'log4j-slf4j2-impl', '2.24.3')}
    ${dependency('org.apache.logging.log4j', 'log4j-core', '2.24.3')}
    ${dependency('org.slf4j', 'slf4j-api', '2.0.17')}
  </dependencies>
</project>
`;
}

function serverProperties(node: BrokerNode, all: BrokerNode[]): string {
  const size = all.length;
  const replication = Math.min(size, 3);
  const minIsr = size >= 3 ? 2 : 1;
  return [
    'process.roles=broker,controller',
    `node.id=${node.nodeId}`,
    `controller.quorum.voters=${all.map((n) => `${n.nodeId}@127.0.0.1:${n.controllerPort}`).join(',')}`,
    `listeners=PLAINTEXT://127.0.0.1:${node.brokerPort},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.brokerPort}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${join(node.dataDir, 'logs')}`,
    `default.replication.factor=${replication}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${replication}`,
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${replication}`,
    `transaction.state.log.min.isr=${minIsr}`,
    `share.coordinator.state.topic.replication.factor=${replication}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    // Topics come from Sluice's declarations (provisioning), never from a client's first use.
    'auto.create.topics.enable=false',
    'num.partitions=1',
    '',
  ].join('\n');
}

const log4jConfig = [
  'rootLogger.level=WARN',
  'rootLogger.appenderRef.stdout.ref=STDOUT',
  'appender.stdout.type=Console',
  'appender.stdout.name=STDOUT',
  'appender.stdout.layout.type=PatternLayout',
  'appender.stdout.layout.pattern=[%d] %p %m (%c)%n',
  // The line that says the broker is ready is logged at INFO by this logger.
  'logger.server.name=kafka.server.KafkaRaftServer',
  'logger.server.level=INFO',
  '',
].join('\n');

class JvmCluster implements KafkaHandle {
  readonly source = 'jvm' as const;
  readonly #nodes: BrokerNode[];
  readonly #java: string;
  readonly #lib: string;
  readonly #options: JvmClusterOptions;

  constructor(nodes: BrokerNode[], java: string, lib: string, options: JvmClusterOptions) {
    this.#nodes = nodes;
    this.#java = java;
    this.#lib = lib;
    this.#options = options;
  }

  get brokers(): string[] {
    return this.#nodes.map((node) => `127.0.0.1:${node.brokerPort}`);
  }

  get bootstrap(): string {
    return this.brokers.join(',');
  }

  processes(): Array<{ pid: number | undefined; dataDir: string }> {
    return this.#nodes.map((node) => ({ pid: node.process?.pid, dataDir: node.dataDir }));
  }

  async format(): Promise<void> {
    const clusterId = randomBytes(16).toString('base64url');
    await Promise.all(
      this.#nodes.map(async (node) => {
        await writeFile(join(node.dataDir, 'server.properties'), serverProperties(node, this.#nodes));
        await writeFile(join(node.dataDir, 'log4j2.properties'), log4jConfig);
        await run(
          this.#java,
          [
            ...this.#jvmArgs(node),
            'kafka.tools.StorageTool',
            'format',
            // The `=` form: a base64url id may begin with "-", which argparse would take for an option.
            `--cluster-id=${clusterId}`,
            '-c',
            this.#props(node),
          ],
          { env: this.#options.env },
        );
      }),
    );
  }

  async startAll(): Promise<void> {
    await Promise.all(this.#nodes.map((node) => this.#start(node)));
  }

  async #start(node: BrokerNode): Promise<void> {
    const logFile = join(node.dataDir, 'broker.log');
    // A restarted broker appends to the log of its earlier run, whose "started" line must not count.
    const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
    const out = openSync(logFile, 'a');
    const child = spawn(this.#java, [...this.#jvmArgs(node), 'kafka.Kafka', this.#props(node)], {
      stdio: ['ignore', out, out],
      detached: this.#options.detached ?? false,
      env: this.#options.env,
    });
    node.process = child;
    if (this.#options.detached) child.unref();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      const state = await Promise.race([exited.then((code) => ({ code })), delay(250).then(() => undefined)]);
      if (state !== undefined) {
        throw new KafkaUnavailableError(
          `Kafka broker ${node.nodeId} exited with code ${state.code} while starting:\n${await tail(logFile)}`,
        );
      }
      const log = (await readFile(logFile)).subarray(logStart).toString('utf8');
      if (log.includes(startedLine) && (await canConnect('127.0.0.1', node.brokerPort))) return;
    }
    child.kill('SIGKILL');
    throw new KafkaUnavailableError(
      `Kafka broker ${node.nodeId} did not start within ${startTimeoutMs} ms:\n${await tail(logFile)}`,
    );
  }

  #props(node: BrokerNode): string {
    return join(node.dataDir, 'server.properties');
  }

  #jvmArgs(node: BrokerNode): string[] {
    return [
      '-Xms128m',
      '-Xmx768m',
      '-XX:+UseG1GC',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${join(node.dataDir, 'log4j2.properties')}`,
      '-cp',
      `${this.#lib}/*`,
    ];
  }

  async stop(): Promise<void> {
    await Promise.all(this.#nodes.map((node) => stopProcess(node.process, 'SIGTERM')));
    await Promise.all(this.#nodes.map((node) => rm(node.dataDir, { recursive: true, force: true })));
  }

  async killBroker(index: number): Promise<void> {
    await stopProcess(this.#node(index).process, 'SIGKILL');
  }

  async restartBroker(index: number): Promise<void> {
    await this.#start(this.#node(index));
  }

  #node(index: number): BrokerNode {
    const node = this.#nodes[index];
    if (node === undefined) throw new Error(`no broker at index ${index}`);
    return node;
  }
}

/** Starts a KRaft cluster of `brokers` combined broker+controller nodes on free loopback ports. */
export async function startJvmCluster(options: JvmClusterOptions): Promise<JvmCluster> {
  const env = options.env ?? process.env;
  const java = await findJava(env);
  const lib = await ensureKafkaJars(env);
  const nodes: BrokerNode[] = [];
  for (let nodeId = 1; nodeId <= options.brokers; nodeId += 1) {
    nodes.push({
      nodeId,
      brokerPort: await freePort(),
      controllerPort: await freePort(),
      dataDir: await mkdtemp(join(tmpdir(), 'sluice-kafka-')),
    });
  }
  const cluster = new JvmCluster(nodes, java, lib, { ...options, env });
  try {
    await cluster.format();
    await cluster.startAll();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** Signals a process and waits for it to exit, escalating to SIGKILL after 30 s. */
export async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** The last lines of a server's log file, for the message of a start that failed. */
export async function tail(file: string, lines = 30, missing = '(no broker log)'): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return missing;
  }
}
