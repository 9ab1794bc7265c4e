export { recordHeaders } from './headers.ts';
export {
  consumerGroups,
  groupName,
  type TopicDeclaration,
  type TopicId,
  type TopicLayout,
  type TopicSpecification,
  topicDeclarations,
  topicName,
  topicSpecifications,
} from './topics.ts';
