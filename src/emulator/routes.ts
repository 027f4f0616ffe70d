/** The Dropbox routes the emulator serves, by name. */

import { downloadRoute } from './download.js';
import { getMetadataRoute } from './get-metadata.js';
import { listFolderContinueRoute, listFolderRoute } from './list-folder.js';
import type { Route } from './route-table.js';
import { getCurrentAccountRoute, getSpaceUsageRoute } from './users.js';

export function createRouteMap(): ReadonlyMap<string, Route> {
  const routes: Route[] = [
    listFolderRoute,
    listFolderContinueRoute,
    getMetadataRoute,
    downloadRoute,
    getCurrentAccountRoute,
    getSpaceUsageRoute,
  ];
  return new Map(routes.map((route) => [route.name, route]));
}
