/** The subset of Dropbox's metadata shapes that the mount reads, as the JSON encodes them. */

export interface FileMetadata {
  '.tag'?: 'file';
  name: string;
  id: string;
  path_lower?: string;
  path_display?: string;
  client_modified: string;
  server_modified: string;
  rev: string;
  size: number;
  content_hash?: string;
  is_downloadable?: boolean;
  /** Set on files that only `files/export` can read, such as Paper docs. */
  export_info?: { export_as?: string; export_options?: string[] };
}

export interface FolderMetadata {
  '.tag'?: 'folder';
  name: string;
  id: string;
  path_lower?: string;
  path_display?: string;
}

export interface DeletedMetadata {
  '.tag': 'deleted';
  name: string;
  path_lower?: string;
  path_display?: string;
}

export type Metadata =
  | (FileMetadata & { '.tag': 'file' })
  | (FolderMetadata & { '.tag': 'folder' })
  | DeletedMetadata;

export interface ListFolderResult {
  entries: Metadata[];
  cursor: string;
  has_more: boolean;
}

export interface SpaceUsage {
  used: number;
  allocation:
    | { '.tag': 'individual'; allocated: number }
    | {
        '.tag': 'team';
        used: number;
        allocated: number;
        user_within_team_space_allocated: number;
      }
    | { '.tag': 'other' };
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
}
