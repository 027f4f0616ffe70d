/**
 * The text a user typed for an option. yargs turns a number option's text into a number before
 * the commands check it, so "abc" arrives as NaN and an empty value as 0. Error messages show the
 * typed text instead, so that they name the value the user wrote.
 */

/** Returns the text given for `--option` in `argv` (its last occurrence), or undefined. */
export function optionText(option: string, argv: readonly string[] = process.argv): string | undefined {
  let text: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === `--${option}`) text = argv[i + 1];
    else if (arg.startsWith(`--${option}=`)) text = arg.slice(option.length + 3);
  }
  return text;
}

/** Returns the typed text of `--option` when there is one, else `value` as text. */
export function shownValue(option: string, value: unknown): string {
  return optionText(option) ?? String(value);
}
