/**
 * Default allow-lists of the policy. Pure data.
 *
 * User-Agent prefixes allowed to make tokenless (IMDSv1) requests by default: ec2-metadata-filter's
 * list. Every current AWS SDK names itself `aws-sdk-<language>/` (aws-sdk-java, aws-sdk-go,
 * aws-sdk-go-v2, aws-sdk-js, aws-sdk-nodejs, aws-sdk-ruby3, aws-sdk-php, aws-sdk-dotnet-coreclr,
 * aws-sdk-cpp, aws-sdk-rust, aws-sdk-kotlin, aws-sdk-swift), which `aws-sdk-` covers; botocore, boto3
 * and the AWS CLI use `Botocore/`, `Boto3/` and `aws-cli/`. Prefixes are case-sensitive.
 * The AWS SDK for JavaScript v3 sends no User-Agent on its IMDS calls, but it uses IMDSv2.
 */
export const DEFAULT_ALLOWED_USER_AGENTS: readonly string[] = [
  'aws-chalice/',
  'aws-cli/',
  'aws-sdk-',
  'Boto3/',
  'Botocore/',
  'Cloud-Init/',
];

/** The guard's own secret header (metatrapd's name). */
export const DEFAULT_AUTH_HEADER = 'x-meta-auth';

/**
 * Headers that say a proxy, load balancer or CDN relayed the request (SSRF through a proxy): a request
 * carrying any of them is refused. The first three are what the metadata services themselves refuse;
 * the others are what nginx, HAProxy, Envoy or a CDN add. Names also match with "_" for "-".
 */
export const DEFAULT_FORWARDING_HEADERS: readonly string[] = [
  'x-forwarded-for',
  'forwarded',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-original-forwarded-for',
  'via',
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'cf-connecting-ip',
];
