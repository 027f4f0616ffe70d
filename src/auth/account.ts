/** The fields of users/get_current_account (a FullAccount) that login and check print. */
export interface AccountSummary {
  account_id: string;
  email: string;
  name: { display_name: string };
}

/** Formats an account as `Display Name <email>`. */
export function describeAccount(account: AccountSummary): string {
  return `${account.name.display_name} <${account.email}>`;
}
