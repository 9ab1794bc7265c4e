import './provided-context.ts';

export { ensureHelm, helmBinary, helmVersion } from './helm.ts';
export {
  type CallHandler,
  echo,
  type ReceivedCall,
  type RecordingServer,
  startRecordingServer,
} from './http-servers.ts';
export { ensureJaeger, type JaegerHandle, jaegerBinary, startJaeger } from './jaeger.ts';
export { dockerAnswers } from './kafka/container.ts';
export { ensureKafkaJars, findJava, kafkaVersion, startJvmCluster } from './kafka/jvm.ts';
export { type StartKafkaOptions, startKafka } from './kafka/launcher.ts';
export { type KafkaHandle, type KafkaSource, KafkaUnavailableError } from './kafka/types.ts';
export { uniqueName } from './naming.ts';
export { canConnect, freePort } from './net.ts';
export { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './otlp-receiver.ts';
export { cacheDir, repoRoot } from './paths.ts';
export { checkMetrics, promtoolPath } from './promtool.ts';
export {
  findRedisBinary,
  type RedisClusterHandle,
  type RedisServer,
  RedisUnavailableError,
  redisCommand,
  type StartRedisOptions,
  startRedis,
  startRedisCluster,
} from './redis.ts';
export {
  type ServiceExit,
  type ServiceName,
  ServiceProcess,
  type ServiceProcessOptions,
  type Stack,
  type StackOptions,
  serviceNames,
  startStack,
} from './services.ts';
export { type BuiltTool, ensureTool, infernoFlamegraph, toolBinary, vegeta } from './tools.ts';
export { waitFor } from './wait.ts';
