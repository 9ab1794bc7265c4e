export { Codec, type Decoded, type EncodedRecord } from './codec.ts';
export { currentSchemaVersion, recordHeaders, supportedSchemaVersions } from './headers.ts';
export { derivedId, idCreatedAt, isId, newId } from './ids.ts';
export * from './messages/index.ts';
export {
  type CarriedHeaders,
  completionRecord,
  type OutgoingRecord,
  progressRecord,
  requestRecord,
  statusRecord,
  webhookRetryRecord,
} from './records.ts';
export {
  consumerGroups,
  groupName,
  laneTopics,
  statusStoreGroupName,
  type TopicDeclaration,
  type TopicId,
  type TopicLayout,
  type TopicSpecification,
  tableReaderGroupName,
  tenantResultTopic,
  tenantResultTopicName,
  tenantResultTopicSpecification,
  topicDeclarations,
  topicName,
  topicSpecifications,
} from './topics.ts';
