export { BrokerProbe, type BrokerProbeOptions } from './broker-probe.ts';
export { type DeadLetterInput, deadLetterRecord, notBeforeOf, waitUntil } from './dead-letters.ts';
export { type GatewayConfigSettings, watchGatewayConfig } from './gateway.ts';
export {
  createHealthServer,
  type ExtraRoute,
  Readiness,
  type ReadinessCheck,
  type ReadinessReport,
} from './health.ts';
export {
  type ConsumerSpec,
  closeServer,
  createServiceContext,
  listenHealth,
  provisionIfAllowed,
  type ServiceContext,
  startConsumer,
  startProducer,
  tracedProducer,
  untilReady,
} from './kafka-service.ts';
export { createLogger, type Logger } from './logger.ts';
export { runMain } from './main.ts';
export {
  Shutdown,
  type ShutdownOptions,
  type ShutdownPhase,
  type ShutdownStep,
  shutdownPhases,
} from './shutdown.ts';
