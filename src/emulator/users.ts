/** users/get_current_account and users/get_space_usage, both with a Void argument. */

import type { EmulatorContext } from './context.js';
import type { RpcRoute } from './route-table.js';

export const getCurrentAccountRoute: RpcRoute = {
  name: 'users/get_current_account',
  style: 'rpc',
  auth: 'user',
  arg: 'void',
  async handle(context: EmulatorContext): Promise<unknown> {
    const { accountId, rootNamespaceId } = context.account;
    // FullAccount; optional fields that need a team or a photo are left out.
    return {
      account_id: accountId,
      name: {
        given_name: 'Emulator',
        surname: 'User',
        familiar_name: 'Emulator',
        display_name: 'Emulator User',
        abbreviated_name: 'EU',
      },
      email: 'emulator-user@example.com',
      email_verified: true,
      disabled: false,
      country: 'US',
      locale: 'en',
      referral_link: 'https://www.dropbox.com/referrals/emulator',
      is_paired: false,
      account_type: { '.tag': 'basic' },
      root_info: {
        '.tag': 'user',
        root_namespace_id: rootNamespaceId,
        home_namespace_id: rootNamespaceId,
      },
    };
  },
};

export const getSpaceUsageRoute: RpcRoute = {
  name: 'users/get_space_usage',
  style: 'rpc',
  auth: 'user',
  arg: 'void',
  async handle(context: EmulatorContext): Promise<unknown> {
    // The catalog keeps the sum of file sizes; flushing the watcher counts recent disk changes.
    await context.state.watcher.flush();
    const used = context.state.account.catalog.usedBytes;
    return { used, allocation: { '.tag': 'individual', allocated: context.quotaBytes } };
  },
};
