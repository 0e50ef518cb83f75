// placeholder replaced below
export interface AwsClients {}
